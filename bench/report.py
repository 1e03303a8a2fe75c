#!/usr/bin/env python3
"""kvred vs redis-server: run a benchmark matrix and write a report.

    python bench/report.py                 # the full matrix (long: see --help)
    python bench/report.py --quick         # a short smoke run
    python bench/report.py --fsync no --tests set,get --clients 50 --pipelines 1,16 -n 50000

For every fsync policy this starts, each in its own temporary directory on a
free loopback port: kvred once per --workers-list entry, redis-server with the
matching appendfsync (AOF on, no RDB), and the --server-bin server if given.
After a warm-up pass on each server it runs every cell of the matrix
(tool x test x clients x pipeline) --repeats times, alternating the servers
inside each cell (the order rotates every repeat) so that drift of the machine
hits all of them alike. Tools: redis-benchmark (--csv output is parsed) and
bench/client.py (which adds p99.9 latencies).

Every finished measurement is written at once to raw/results.json and
raw/results.csv, so a Ctrl-C keeps them; summary.md and the SVG charts are
then made from whatever finished. `--render DIR` remakes them from DIR/raw.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from interpreter import use_repo_venv  # noqa: E402

if __name__ == "__main__":
    use_repo_venv("matplotlib")  # before any third-party import: may re-exec under .venv/bin/python

import benchlib  # noqa: E402
from benchlib import BENCH_DIR, HOST, Server, ServerError, median  # noqa: E402

# redis-benchmark's tests (`-t` names); with these, its whole default suite. `lrange` runs
# its LPUSH fill and LRANGE_100/300/500/600, one row each.
RB_TESTS = ("ping", "ping_inline", "ping_mbulk", "set", "get", "incr", "lpush", "rpush", "lpop", "rpop", "sadd",
            "hset", "spop", "zadd", "zpopmin", "lrange", "mset")
DEFAULT_SUITE = "ping_inline,ping_mbulk,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange,mset"
CLIENT_TESTS = ("ping", "get", "exists", "set", "del", "mset", "incr")
TOOLS = ("redis-benchmark", "client")
FSYNC_POLICIES = ("always", "everysec", "no")
CSV_FIELDS = [
    "run", "time", "fsync", "server", "server_kind", "workers", "tool", "test", "clients", "pipeline", "requests",
    "keyspace", "repeat", "order", "rps", "avg_ms", "min_ms", "p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms",
    "elapsed_s", "error", "command",
]
DEFAULTS: dict[str, Any] = {
    "fsync": "always,everysec,no", "workers_list": "1,2", "tests": "ping,set,get,incr,mset", "clients": "1,50",
    "pipelines": "1,16", "requests": 100_000, "repeats": 3, "warmup": 10_000, "tools": "redis-benchmark,client",
}
QUICK: dict[str, Any] = {
    "fsync": "everysec", "tests": "ping,set,get", "clients": "50", "pipelines": "1,16", "requests": 20_000,
    "repeats": 1, "warmup": 1_000,
}


# ------------------------------------------------------------------ options


def csv_list(text: str) -> list[str]:
    return [x.strip().lower() for x in text.split(",") if x.strip()]


def int_list(text: str) -> list[int]:
    values = [int(x) for x in csv_list(text)]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fsync", help=f"fsync policies, comma-separated (default {DEFAULTS['fsync']})")
    p.add_argument("--workers-list", help=f"kvred --workers values (default {DEFAULTS['workers_list']})")
    p.add_argument("--tests", help=f"tests (default {DEFAULTS['tests']}; `default`: redis-benchmark's default suite); redis-benchmark knows "
                   f"{','.join(RB_TESTS)}, client.py knows {','.join(CLIENT_TESTS)}")
    p.add_argument("--clients", help=f"connection counts, -c (default {DEFAULTS['clients']})")
    p.add_argument("--pipelines", help=f"pipeline depths, -P (default {DEFAULTS['pipelines']})")
    p.add_argument("-n", "--requests", type=int, help=f"requests per run (default {DEFAULTS['requests']})")
    p.add_argument("-r", "--keyspace", type=int, default=100_000, help="random key range, -r (default 100000)")
    p.add_argument("--repeats", type=int, help=f"measured runs per server and cell (default {DEFAULTS['repeats']})")
    p.add_argument("--warmup", type=int, help="requests per test in the warm-up pass after each server start "
                   f"(default {DEFAULTS['warmup']}; 0: none)")
    p.add_argument("--tools", help=f"tools, comma-separated (default {DEFAULTS['tools']})")
    p.add_argument("--quick", action="store_true", help="short smoke run: " + ", ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items()) + " (explicit options win)")
    p.add_argument("--server-bin", help="another RESP server binary to compare, started as BIN --port P")
    p.add_argument("--redis-server", default="redis-server", help="redis-server binary (default from PATH)")
    p.add_argument("--redis-benchmark", default="redis-benchmark", help="redis-benchmark binary (default from PATH)")
    p.add_argument("--out", type=Path, help="output directory (default bench/results/<timestamp>)")
    p.add_argument("--tmpdir", type=Path, help="where the servers' data directories go (default: system temp)")
    p.add_argument("--run-timeout", type=float, default=900.0, help="seconds before one run is abandoned (900)")
    p.add_argument("--memory", action="store_true", help="also run bench/memory.py (RSS and AOF start-up)")
    p.add_argument("--keys", type=int, default=1_000_000, help="keys for --memory (default 1000000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--render", type=Path, metavar="DIR", help="only remake summary.md and charts from DIR/raw")
    args = p.parse_args(argv)
    preset = {**DEFAULTS, **(QUICK if args.quick else {})}
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    try:
        args.fsync = csv_list(args.fsync)
        args.workers_list = int_list(args.workers_list)
        args.tests = csv_list(args.tests.replace("default", DEFAULT_SUITE))
        args.clients = int_list(args.clients)
        args.pipelines = int_list(args.pipelines)
        args.tools = csv_list(args.tools)
    except (ValueError, argparse.ArgumentTypeError) as e:
        p.error(str(e))
    for policy in args.fsync:
        if policy not in FSYNC_POLICIES:
            p.error(f"unknown fsync policy {policy!r}")
    for tool in args.tools:
        if tool not in TOOLS:
            p.error(f"unknown tool {tool!r} (choose from {', '.join(TOOLS)})")
    for test in args.tests:
        if test not in RB_TESTS and test not in CLIENT_TESTS:
            p.error(f"unknown test {test!r}")
    if args.requests < 1 or args.repeats < 1 or args.keyspace < 1 or args.warmup < 0:
        p.error("-n, --repeats and -r must be at least 1, --warmup at least 0")
    return args


# ------------------------------------------------------------------ output


class Results:
    """Measurements, written out as soon as each one is taken."""

    def __init__(self, out: Path, meta: dict[str, Any]) -> None:
        self.out = out
        self.raw = out / "raw"
        self.raw.mkdir(parents=True, exist_ok=True)
        self.meta = meta
        self.records: list[dict[str, Any]] = []
        self.csv_path = self.raw / "results.csv"
        with open(self.csv_path, "w", newline="") as f:
            csv.DictWriter(f, CSV_FIELDS).writeheader()
        self.save()

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        with open(self.csv_path, "a", newline="") as f:
            csv.DictWriter(f, CSV_FIELDS, extrasaction="ignore").writerow(record)
        self.save()

    def save(self) -> None:
        tmp = self.raw / "results.json.tmp"
        tmp.write_text(json.dumps({"meta": self.meta, "results": self.records}, indent=1))
        os.replace(tmp, self.raw / "results.json")


class Progress:
    """A one-line progress bar on a terminal; one plain line per run otherwise."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.start = time.monotonic()

    def update(self, label: str, note: str = "", step: bool = False) -> None:
        if not self.enabled or not (self.tty or step):
            return
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        frac = self.done / self.total if self.total else 1.0
        head = f"{self.done}/{self.total} {frac:4.0%} {_duration(elapsed)} ETA {_duration(eta)}"
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns
            bar_len = 24
            filled = int(frac * bar_len)
            line = f"[{'#' * filled}{'.' * (bar_len - filled)}] {head}  {label} {note}"
            sys.stderr.write("\r" + line[: width - 1].ljust(width - 1))
        else:
            sys.stderr.write(f"[{head}] {label} {note}\n")
        sys.stderr.flush()

    def step(self, label: str, note: str = "") -> None:
        self.done += 1
        self.update(label, note, step=True)

    def message(self, text: str) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\r" + " " * (shutil.get_terminal_size((100, 20)).columns - 1) + "\r")
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


# ------------------------------------------------------------------ running


@dataclass
class Cell:
    fsync: str
    tool: str
    test: str
    clients: int
    pipeline: int


@dataclass
class Runner:
    args: argparse.Namespace
    results: Results
    progress: Progress
    data_root: Path
    servers: list[Server] = field(default_factory=list)
    run_id: int = 0

    # -- servers

    def make_servers(self, fsync: str) -> list[Server]:
        kvreds = [benchlib.kvred_server(self._dir(f"kvred-w{w}-{fsync}"), w, fsync) for w in self.args.workers_list]
        others = [benchlib.redis_server(self._dir(f"redis-{fsync}"), fsync, binary=self.args.redis_server)]
        if self.args.server_bin:
            others.append(benchlib.other_server(self._dir(f"other-{fsync}"), self.args.server_bin))
        # Interleave: kvred, redis, kvred, other, ... so that runs alternate.
        order: list[Server] = []
        for i in range(max(len(kvreds), len(others))):
            order.extend(kvreds[i : i + 1])
            order.extend(others[i : i + 1])
        return order

    def _dir(self, name: str) -> Path:
        path = self.data_root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start(self, server: Server) -> None:
        server.start(timeout=120)
        self.results.meta.setdefault("servers", []).append({
            "label": server.label, "fsync": server.fsync, "port": server.port, "command": server.command,
            "log": f"logs/{server.dir.name}.log",
        })
        self.results.save()
        self.warm_up(server)

    def restart(self, server: Server) -> None:
        self.progress.message(f"! {server.label} (fsync {server.fsync}) is not running; log tail:\n"
                              f"{server.log_tail(1500)}\n! restarting it")
        server.stop()
        server.port = benchlib.free_port()
        i = server.argv.index("--port")
        server.argv[i + 1] = str(server.port)
        self.start(server)

    def warm_up(self, server: Server) -> None:
        if not self.args.warmup:
            return
        rb_tests = [t for t in self.args.tests if t in RB_TESTS] if "redis-benchmark" in self.args.tools else []
        if rb_tests:
            argv = [self.args.redis_benchmark, "-h", HOST, "-p", str(server.port), "-t", ",".join(rb_tests),
                    "-n", str(self.args.warmup), "-c", "50", "-P", "16", "-r", str(self.args.keyspace), "-q"]
            subprocess.run(argv, capture_output=True, timeout=self.args.run_timeout)
        for test in self.args.tests:
            if "client" in self.args.tools and test in CLIENT_TESTS and (test not in RB_TESTS or not rb_tests):
                subprocess.run(self._client_argv(server, test, 50, 16, self.args.warmup), capture_output=True,
                               timeout=self.args.run_timeout)

    def stop_all(self) -> None:
        for server in self.servers:
            try:
                server.stop()
            except Exception as e:  # keep stopping the others
                self.progress.message(f"! stopping {server.label}: {e}")
        self.servers = []

    # -- matrix

    def cells(self, fsync: str) -> list[Cell]:
        out = []
        for tool in self.args.tools:
            known = RB_TESTS if tool == "redis-benchmark" else CLIENT_TESTS
            for test in self.args.tests:
                if test not in known:
                    continue
                for c in self.args.clients:
                    for pl in self.args.pipelines:
                        out.append(Cell(fsync, tool, test, c, pl))
        return out

    def total_runs(self) -> int:
        servers = len(self.args.workers_list) + 1 + (1 if self.args.server_bin else 0)
        return sum(len(self.cells(f)) for f in self.args.fsync) * self.args.repeats * servers

    def run(self) -> None:
        for fsync in self.args.fsync:
            self.servers = self.make_servers(fsync)
            try:
                for server in self.servers:
                    self.progress.update(f"fsync={fsync}: starting {server.label}")
                    self.start(server)
                for cell in self.cells(fsync):
                    for rep in range(self.args.repeats):
                        k = rep % len(self.servers)
                        order = self.servers[k:] + self.servers[:k]
                        for pos, server in enumerate(order):
                            self.measure(cell, server, rep, pos)
            finally:
                self.stop_all()

    def measure(self, cell: Cell, server: Server, rep: int, pos: int) -> None:
        label = f"fsync={cell.fsync} {server.label} {cell.tool} {cell.test} c={cell.clients} P={cell.pipeline}"
        self.progress.update(label)
        if not server.alive():
            self.restart(server)
        base = {
            "fsync": cell.fsync, "server": server.label, "server_kind": server.kind, "workers": server.workers,
            "tool": cell.tool, "clients": cell.clients, "pipeline": cell.pipeline,
            "requests": self.args.requests, "keyspace": self.args.keyspace, "repeat": rep, "order": pos,
        }
        if cell.tool == "redis-benchmark":
            argv = [self.args.redis_benchmark, "-h", HOST, "-p", str(server.port), "-t", cell.test,
                    "-n", str(self.args.requests), "-c", str(cell.clients), "-P", str(cell.pipeline),
                    "-r", str(self.args.keyspace), "--csv"]
        else:
            argv = self._client_argv(server, cell.test, cell.clients, cell.pipeline, self.args.requests)
        rows, error, elapsed = self._execute(argv, cell.tool)
        self.run_id += 1
        if not server.alive():
            error = (error + "; " if error else "") + f"{server.label} died during the run"
        if not rows:
            rows = [{"test": cell.test.upper()}]
        note = ""
        for row in rows:
            record = {"run": self.run_id, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **base, **row, "elapsed_s": round(elapsed, 3),
                      "error": error, "command": shlex.join(argv)}
            self.results.add(record)
            if row.get("rps") is not None:
                note = f"{row['rps']:,.0f}/s"
        if error:
            self.progress.message(f"! {label}: {error}")
        self.progress.step(label, note)

    def _client_argv(self, server: Server, test: str, clients: int, pipeline: int, requests: int) -> list[str]:
        return [sys.executable, str(BENCH_DIR / "client.py"), "--host", HOST, "--port", str(server.port),
                "--mode", test, "-n", str(requests), "--pipeline", str(pipeline), "--connections", str(clients),
                "--keyspace", str(self.args.keyspace), "--format", "json", "--timeout", str(self.args.run_timeout)]

    def _execute(self, argv: list[str], tool: str) -> tuple[list[dict[str, Any]], str, float]:
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.args.run_timeout + 30)
        except subprocess.TimeoutExpired:
            return [], f"timed out after {self.args.run_timeout:.0f} s", time.perf_counter() - t0
        elapsed = time.perf_counter() - t0
        error = ""
        rows: list[dict[str, Any]] = []
        try:
            rows = parse_redis_benchmark(proc.stdout) if tool == "redis-benchmark" else parse_client(proc.stdout)
        except (ValueError, KeyError) as e:
            error = f"cannot parse output: {e}"
        stderr = proc.stderr.strip()
        if proc.returncode != 0:
            error = f"exit {proc.returncode}: {stderr[-500:] or proc.stdout.strip()[-500:]}"
        elif "Error from server" in stderr or "Error from server" in proc.stdout:
            error = stderr[-500:]
        elif not rows and not error:
            error = f"no result in output: {(proc.stdout + stderr)[-500:]}"
        if tool == "client" and rows and rows[0].pop("_errors", 0):
            error = error or f"error replies: {rows[0].get('_first_error')}"
        for row in rows:
            row.pop("_first_error", None)
        return rows, error, elapsed


def parse_redis_benchmark(stdout: str) -> list[dict[str, Any]]:
    """Rows of `redis-benchmark --csv`: test, rps, avg/min/p50/p95/p99/max latency (ms)."""
    lines = [line for line in stdout.splitlines() if line.startswith('"')]
    rows = []
    for rec in csv.DictReader(lines):
        rows.append({
            "test": rec["test"], "rps": float(rec["rps"]), "avg_ms": float(rec["avg_latency_ms"]),
            "min_ms": float(rec["min_latency_ms"]), "p50_ms": float(rec["p50_latency_ms"]),
            "p95_ms": float(rec["p95_latency_ms"]), "p99_ms": float(rec["p99_latency_ms"]),
            "p999_ms": None, "max_ms": float(rec["max_latency_ms"]),
        })
    return rows


def parse_client(stdout: str) -> list[dict[str, Any]]:
    data = json.loads(stdout.strip().splitlines()[-1])
    lat = data["latency_ms"]
    return [{
        "test": data["test"], "rps": float(data["ops_per_sec"]), "avg_ms": lat["mean"], "min_ms": lat["min"],
        "p50_ms": lat["p50"], "p95_ms": None, "p99_ms": lat["p99"], "p999_ms": lat["p999"], "max_ms": lat["max"],
        "_errors": data["errors"], "_first_error": data["first_error"],
    }]


# ------------------------------------------------------------------ summary


def _num(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


@dataclass
class Agg:
    values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    runs: int = 0
    errors: int = 0

    def med(self, key: str) -> float | None:
        vals = self.values.get(key)
        return median(vals) if vals else None

    def lo(self, key: str) -> float | None:
        vals = self.values.get(key)
        return min(vals) if vals else None

    def hi(self, key: str) -> float | None:
        vals = self.values.get(key)
        return max(vals) if vals else None


def aggregate(records: list[dict[str, Any]]) -> dict[tuple[Any, ...], Agg]:
    """(fsync, tool, test, clients, pipeline, server) -> Agg over the repeats (error-free runs only)."""
    out: dict[tuple[Any, ...], Agg] = defaultdict(Agg)
    for r in records:
        key = (r["fsync"], r["tool"], r["test"], int(r["clients"]), int(r["pipeline"]), r["server"])
        agg = out[key]
        agg.runs += 1
        if r.get("error"):
            agg.errors += 1
            continue
        for k in ("rps", "p50_ms", "p99_ms", "p999_ms", "avg_ms"):
            v = _num(r.get(k))
            if v is not None:
                agg.values[k].append(v)
    return out


def _ordered(values: list[Any]) -> list[Any]:
    seen: dict[Any, None] = {}
    for v in values:
        seen.setdefault(v, None)
    return list(seen)


def server_order(records: list[dict[str, Any]]) -> list[str]:
    """kvred servers by worker count, then redis-server, then the others."""
    info = {r["server"]: (r["server_kind"], r.get("workers")) for r in records}

    def key(name: str) -> tuple[int, int, str]:
        kind, workers = info[name]
        rank = {"kvred": 0, "redis": 1}.get(kind, 2)
        return rank, int(workers or 0), name

    return sorted(info, key=key)


def fmt_rps(v: float | None) -> str:
    if v is None:
        return "–"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}"


def fmt_ms(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def fmt_cell(agg: Agg | None) -> str:
    if agg is None:
        return "–"
    med = agg.med("rps")
    if med is None:
        return f"error ({agg.errors}/{agg.runs})"
    text = fmt_rps(med)
    n = len(agg.values["rps"])
    if n > 1:
        text += f" [{fmt_rps(agg.lo('rps'))}–{fmt_rps(agg.hi('rps'))}]"
    if agg.errors:
        text += f" ({agg.errors} failed)"
    return text


def ratio(a: Agg | None, b: Agg | None, key: str = "rps") -> str:
    if a is None or b is None:
        return "–"
    x, y = a.med(key), b.med(key)
    if x is None or y is None or y == 0:
        return "–"
    return f"{x / y:.2f}"


def kvred_and_redis(servers: list[str], records: list[dict[str, Any]]) -> tuple[list[str], str | None]:
    kinds = {r["server"]: r["server_kind"] for r in records}
    redis = next((s for s in servers if kinds[s] == "redis"), None)
    return [s for s in servers if kinds[s] != "redis"], redis


def render_summary(out: Path, data: dict[str, Any], charts: list[str]) -> str:
    meta = data["meta"]
    records = data["results"]
    aggs = aggregate(records)
    servers = server_order(records) if records else []
    compared, redis = kvred_and_redis(servers, records) if records else ([], None)
    args = meta.get("args", {})
    lines = [f"# kvred vs redis-server: benchmark {meta.get('timestamp', '')}", ""]
    done = len({r.get("run") for r in records})
    status = meta.get("status", "unknown")
    lines.append(f"Status: **{status}** — {done} of {meta.get('planned_runs', '?')} planned runs finished "
                 f"({len(records)} result rows), started {meta.get('started', '?')}, "
                 f"finished {meta.get('finished', '?')}.")
    lines.append("")
    lines.append("Parameters: " + ", ".join(
        f"`{k}={','.join(map(str, v)) if isinstance(v, list) else v}`" for k, v in args.items()))
    lines.append("")
    lines.append("How to read: each cell is the **median** requests/s over the repeats, with [min–max]. "
                 "A ratio is the median of the server in the column title divided by redis-server's median "
                 "in the same cell: above 1 means faster than redis-server. Latencies are medians over the "
                 "repeats of each run's percentile, in ms; with pipelining a latency is one batch's round trip. "
                 "In latency tables the ratio is of p99 latencies: above 1 means slower than redis-server.")
    lines.append("")
    lines.append("## Machine")
    lines.append("")
    lines.append(benchlib.machine_markdown(meta.get("machine", {})))
    lines.append("")

    fsyncs = _ordered([r["fsync"] for r in records])
    for tool in _ordered([r["tool"] for r in records]):
        title = "redis-benchmark" if tool == "redis-benchmark" else "bench/client.py"
        for fsync in fsyncs:
            keys = _ordered([(r["test"], int(r["clients"]), int(r["pipeline"])) for r in records
                             if r["tool"] == tool and r["fsync"] == fsync])
            if not keys:
                continue
            lines.append(f"## Throughput, {title}, fsync {fsync}")
            lines.append("")
            head = ["test", "-c", "-P", *servers, *(f"{s} / redis" for s in compared if redis)]
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "---|" * 3 + "---:|" * (len(head) - 3))
            for test, c, pl in keys:
                row = [test, str(c), str(pl)]
                cell_aggs = {s: aggs.get((fsync, tool, test, c, pl, s)) for s in servers}
                row += [fmt_cell(cell_aggs[s]) for s in servers]
                if redis:
                    row += [ratio(cell_aggs[s], cell_aggs[redis]) for s in compared]
                lines.append("| " + " | ".join(row) + " |")
            lines.append("")
            lat_keys = ("p50_ms", "p99_ms", "p999_ms") if tool == "client" else ("p50_ms", "p99_ms")
            lines.append(f"Latency, {title}, fsync {fsync} ({' / '.join(k[:-3] for k in lat_keys)}, ms)")
            lines.append("")
            head = ["test", "-c", "-P", *servers, *(f"{s} / redis p99" for s in compared if redis)]
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "---|" * 3 + "---:|" * (len(head) - 3))
            for test, c, pl in keys:
                row = [test, str(c), str(pl)]
                cell_aggs = {s: aggs.get((fsync, tool, test, c, pl, s)) for s in servers}
                for s in servers:
                    a = cell_aggs[s]
                    row.append("–" if a is None else " / ".join(fmt_ms(a.med(k)) for k in lat_keys))
                if redis:
                    row += [ratio(cell_aggs[s], cell_aggs[redis], "p99_ms") for s in compared]
                lines.append("| " + " | ".join(row) + " |")
            lines.append("")
            chart = f"throughput_{fsync}.svg"
            if chart in charts and tool == _chart_tool(records):
                lines.append(f"![throughput, fsync {fsync}]({chart})")
                lines.append("")

    for chart, title in (("throughput_vs_workers.svg", "Throughput vs kvred --workers"),
                         ("latency_client.svg", "Latency percentiles (bench/client.py)")):
        if chart in charts:
            lines += [f"## {title}", "", f"![{title}]({chart})", ""]

    memory_md = out / "memory.md"
    if memory_md.exists():
        lines.append(re.sub(r"^(#+) ", r"#\1 ", memory_md.read_text(), flags=re.M))
        lines.append("")

    errors = [r for r in records if r.get("error")]
    if errors:
        lines.append(f"## Failed runs ({len(errors)})")
        lines.append("")
        for r in errors[:50]:
            lines.append(f"- fsync {r['fsync']}, {r['server']}, {r['tool']} {r['test']} -c {r['clients']} "
                         f"-P {r['pipeline']}: {str(r['error'])[:300]}")
        lines.append("")

    lines.append("## Commands")
    lines.append("")
    lines.append("Report: `" + meta.get("command", "") + "`")
    lines.append("")
    lines.append("Servers (each in its own temporary directory, stopped with SIGTERM when its fsync policy is done):")
    lines.append("")
    lines.append("```")
    for s in meta.get("servers", []):
        lines.append(s["command"])
    lines.append("```")
    lines.append("")
    commands = _ordered([r["command"] for r in records])
    lines.append(f"<details><summary>All {len(commands)} benchmark commands, in the order run</summary>")
    lines.append("")
    lines.append("```")
    lines += commands
    lines.append("```")
    lines.append("")
    lines.append("</details>")
    lines.append("")
    lines.append("Raw data: `raw/results.json` (with this metadata), `raw/results.csv` (one row per result).")
    lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------- charts


def _chart_tool(records: list[dict[str, Any]]) -> str:
    tools = {r["tool"] for r in records}
    return "redis-benchmark" if "redis-benchmark" in tools else "client"


LEGEND_IN = 0.5  # inches above the panels for the title and a legend row
TITLE_IN = 0.3


def make_charts(out: Path, records: list[dict[str, Any]]) -> list[str]:
    """Write the report's SVG charts into `out`; returns their file names."""
    import matplotlib.pyplot as plt

    names = []
    for name, fig in chart_figures(records):
        fig.savefig(out / name)
        plt.close(fig)
        names.append(name)
    return names


def chart_figures(records: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """The charts as (file name, matplotlib Figure), not yet saved."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "svg.fonttype": "none"})
    made: list[tuple[str, Any]] = []
    if not records:
        return made
    aggs = aggregate(records)
    servers = server_order(records)
    colors = {s: plt.get_cmap("tab10")(i) for i, s in enumerate(servers)}
    tool = _chart_tool(records)
    fsyncs = _ordered([r["fsync"] for r in records])

    # One chart per fsync policy: throughput with min/max whiskers, servers side by side.
    # Linear from 0, so that bar heights compare (a log axis over less than a decade showed
    # one tick label or none), each bar labelled with its median above its whisker, and the
    # legend above the panels, where it cannot cover a bar.
    for fsync in fsyncs:
        recs = [r for r in records if r["tool"] == tool and r["fsync"] == fsync]
        combos = _ordered([(int(r["clients"]), int(r["pipeline"])) for r in recs])
        tests = _ordered([r["test"] for r in recs])
        if not combos:
            continue
        height = 2.8 * len(combos) + LEGEND_IN
        fig, axes = plt.subplots(len(combos), 1, figsize=(max(7, 1.3 * len(tests) * len(servers) / 2 + 3), height),
                                 squeeze=False)
        width = 0.8 / len(servers)
        for ax, (c, pl) in zip(axes[:, 0], combos, strict=True):
            top = 0.0
            for j, s in enumerate(servers):
                xs, ys, lo, hi = [], [], [], []
                for i, test in enumerate(tests):
                    a = aggs.get((fsync, tool, test, c, pl, s))
                    med = a.med("rps") if a else None
                    if med is None:
                        continue
                    assert a is not None
                    xs.append(i - 0.4 + width * (j + 0.5))
                    ys.append(med)
                    lo.append(med - (a.lo("rps") or med))
                    hi.append((a.hi("rps") or med) - med)
                ax.bar(xs, ys, width * 0.95, yerr=[lo, hi], capsize=2, color=colors[s], label=s,
                       error_kw={"elinewidth": 0.8})
                for x, y, h in zip(xs, ys, hi, strict=True):
                    ax.annotate(fmt_rps(y), (x, y + h), xytext=(0, 2), textcoords="offset points", rotation=90,
                                ha="center", va="bottom", fontsize=7)
                    top = max(top, y + h)
            ax.set_ylim(0, top * 1.3 or 1)  # room for the vertical labels
            ax.set_xticks(range(len(tests)), tests)
            ax.set_ylabel("requests/s")
            ax.set_axisbelow(True)
            ax.set_title(f"-c {c} -P {pl}", fontsize=9, loc="left")
            ax.grid(axis="y", alpha=0.3)
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: fmt_rps(v)))
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1 - TITLE_IN / height),
                   ncols=min(len(labels), 6), fontsize=8, frameon=False)
        fig.suptitle(f"Throughput, fsync {fsync} ({tool}; median of repeats, whiskers min–max)")
        fig.tight_layout(rect=(0, 0, 1, 1 - LEGEND_IN / height))
        name = f"throughput_{fsync}.svg"
        made.append((name, fig))

    # Throughput vs --workers: kvred lines per test; redis-server as a dashed level.
    kv = [r for r in records if r["tool"] == tool and r["server_kind"] == "kvred"]
    if kv:
        combos = _ordered([(int(r["clients"]), int(r["pipeline"])) for r in kv])
        tests = _ordered([r["test"] for r in kv])
        workers = sorted({int(r["workers"]) for r in kv})
        name_of = {int(r["workers"]): r["server"] for r in kv}
        redis = next((s for s in servers if s == "redis-server"), None)
        tcolors = {t: plt.get_cmap("tab10")(i % 10) for i, t in enumerate(tests)}
        fig, axes = plt.subplots(len(fsyncs), len(combos), figsize=(3.4 * len(combos) + 1, 2.8 * len(fsyncs)),
                                 squeeze=False, sharex=True)
        for r_i, fsync in enumerate(fsyncs):
            for c_i, (c, pl) in enumerate(combos):
                ax = axes[r_i, c_i]
                for test in tests:
                    ys, lo, hi, xs = [], [], [], []
                    for w in workers:
                        a = aggs.get((fsync, tool, test, c, pl, name_of[w]))
                        med = a.med("rps") if a else None
                        if med is None:
                            continue
                        assert a is not None
                        xs.append(w)
                        ys.append(med)
                        lo.append(med - (a.lo("rps") or med))
                        hi.append((a.hi("rps") or med) - med)
                    if xs:
                        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", ms=3, capsize=2, color=tcolors[test],
                                    label=f"kvred {test}")
                    ra = aggs.get((fsync, tool, test, c, pl, redis)) if redis else None
                    if ra is not None and ra.med("rps") is not None:
                        ax.axhline(ra.med("rps"), color=tcolors[test], ls="--", lw=0.8)
                ax.set_title(f"fsync {fsync}, -c {c} -P {pl}", fontsize=8)
                ax.set_xticks(workers)
                ax.grid(alpha=0.3)
                ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: fmt_rps(v)))
                if r_i == len(fsyncs) - 1:
                    ax.set_xlabel("kvred --workers")
                if c_i == 0:
                    ax.set_ylabel("requests/s")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        handles.append(matplotlib.lines.Line2D([], [], color="grey", ls="--", lw=0.8))
        labels.append("redis-server (same colour)")
        fig.legend(handles, labels, loc="lower center", ncols=min(len(labels), 7), fontsize=8)
        fig.suptitle(f"Throughput vs kvred --workers ({tool}; median, whiskers min–max)")
        fig.tight_layout(rect=(0, 0.07 if len(fsyncs) > 1 else 0.12, 1, 1))
        name = "throughput_vs_workers.svg"
        made.append((name, fig))

    # Latency percentiles from bench/client.py runs: rows fsync, columns -c/-P, tests along x.
    cl = [r for r in records if r["tool"] == "client"]
    if cl:
        cfsyncs = _ordered([r["fsync"] for r in cl])
        combos = _ordered([(int(r["clients"]), int(r["pipeline"])) for r in cl])
        tests = _ordered([r["test"] for r in cl])
        fig, axes = plt.subplots(len(cfsyncs), len(combos), squeeze=False,
                                 figsize=(max(4.0, 0.3 * len(tests) * len(servers)) * len(combos) + 0.5,
                                          3.0 * len(cfsyncs) + 0.6))
        width = 0.8 / len(servers)
        for r_i, fsync in enumerate(cfsyncs):
            for c_i, (c, pl) in enumerate(combos):
                ax = axes[r_i, c_i]
                for j, s in enumerate(servers):
                    xs, p50, p99, p999 = [], [], [], []
                    for i, test in enumerate(tests):
                        a = aggs.get((fsync, "client", test, c, pl, s))
                        if a is None or a.med("p50_ms") is None:
                            continue
                        xs.append(i - 0.4 + width * (j + 0.5))
                        p50.append(a.med("p50_ms"))
                        p99.append(a.med("p99_ms"))
                        p999.append(a.med("p999_ms"))
                    ax.bar(xs, p50, width * 0.95, color=colors[s], label=f"{s} (bar: p50)")
                    for x, y0, y1 in zip(xs, p50, p999, strict=True):
                        ax.plot([x, x], [y0, y1], color=colors[s], lw=0.7, zorder=2)
                    ax.scatter(xs, p99, marker="^", s=16, color=colors[s], edgecolors="black", linewidths=0.5,
                               zorder=3)
                    ax.scatter(xs, p999, marker="v", s=16, color="white", edgecolors=colors[s], linewidths=1.0,
                               zorder=3)
                # log: p50 and p99.9 can be 20x apart. Ticks at 1-2-5 steps (finer within one
                # decade), in plain numbers: powers of ten alone left one label, or none.
                ax.set_yscale("log")
                low, high = ax.get_ylim()
                subs = (1.0, 2.0, 5.0) if high > 10 * low else (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
                ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=subs))
                ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
                ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
                ax.set_axisbelow(True)
                ax.grid(axis="y", alpha=0.3)
                ax.set_xticks(range(len(tests)), tests, fontsize=7, rotation=20)
                ax.set_title(f"fsync {fsync}, -c {c} -P {pl}", fontsize=8)
                if c_i == 0:
                    ax.set_ylabel("ms per round trip")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        handles += [matplotlib.lines.Line2D([], [], marker="^", ls="", color="grey", markeredgecolor="black"),
                    matplotlib.lines.Line2D([], [], marker="v", ls="", color="white", markeredgecolor="grey")]
        labels += ["p99", "p99.9"]
        fig.legend(handles, labels, loc="lower center", ncols=len(labels), fontsize=8)
        fig.suptitle("Latency per round trip, bench/client.py (one batch with -P > 1; median of repeats)")
        fig.tight_layout(rect=(0, 0.35 / (3.0 * len(cfsyncs) + 0.6), 1, 1))
        name = "latency_client.svg"
        made.append((name, fig))
    return made


def render(out: Path) -> None:
    data = json.loads((out / "raw" / "results.json").read_text())
    charts = make_charts(out, data["results"])
    (out / "summary.md").write_text(render_summary(out, data, charts))


# --------------------------------------------------------------------- main


def save_logs(data_root: Path, dest: Path) -> None:
    """Keep the servers' logs (their data directories are deleted)."""
    for log in sorted(data_root.glob("*/*.log")):
        dest.mkdir(exist_ok=True)
        shutil.copyfile(log, dest / f"{log.parent.name}.log")


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        render(args.render)
        print(f"rendered {args.render / 'summary.md'}")
        return 0
    for binary in (args.redis_server, args.redis_benchmark, *([args.server_bin] if args.server_bin else [])):
        if shutil.which(binary) is None:
            sys.exit(f"error: {binary!r} not found")
    ts = benchlib.timestamp()
    out: Path = (args.out or BENCH_DIR / "results" / ts).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data_root = Path(tempfile.mkdtemp(prefix="kvred-bench-", dir=args.tmpdir))
    meta: dict[str, Any] = {
        "timestamp": ts,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": shlex.join(["python", os.path.relpath(__file__), *(sys.argv[1:] if argv is None else argv)]),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                 if k not in ("render", "no_progress")},
        "machine": benchlib.machine_info(args.redis_server, args.redis_benchmark, data_root),
        "status": "running",
        "servers": [],
    }
    results = Results(out, meta)
    progress = Progress(0, not args.no_progress)
    runner = Runner(args, results, progress, data_root)
    progress.total = meta["planned_runs"] = runner.total_runs()
    print(f"{progress.total} runs planned; results in {out}", file=sys.stderr)
    old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    status = "complete"
    code = 0
    try:
        runner.run()
        if args.memory:
            import memory

            progress.message(f"memory and start-up with {args.keys} keys...")
            memory.run_all(keys=args.keys, workers_list=args.workers_list, out=out, repeats=args.repeats,
                           redis_bin=args.redis_server, tmpdir=data_root, log=progress.message)
    except KeyboardInterrupt:
        status = "interrupted"
        code = 130
        progress.message("\ninterrupted: stopping the servers and writing the report of what finished")
    except ServerError as e:
        status = "failed"
        code = 1
        progress.message(f"error: {e}")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the clean-up finish
        runner.stop_all()
        progress.close()
        meta["status"] = status
        meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
        results.save()
        try:
            render(out)
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, old_term)
            save_logs(data_root, out / "logs")
            shutil.rmtree(data_root, ignore_errors=True)
    print(f"summary: {out / 'summary.md'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
