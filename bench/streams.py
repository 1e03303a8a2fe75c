#!/usr/bin/env python3
"""Stream throughput and memory: XADD and XREADGROUP, kvred vs redis-server in one run.

    python bench/streams.py                       # -c 50, -P 1 and 16, 200000 requests, 3 repeats
    python bench/streams.py --pipelines 1 -n 50000 --repeats 1 --memory-entries 200000

Every load is `redis-benchmark --csv` with an arbitrary command, against each server in
turn (the order rotates on every repeat, so drift of the machine hits both alike):

  xadd          XADD s * f <16 bytes>                       one stream grows by n entries
  xadd-maxlen   XADD s MAXLEN ~ 1000 * f <16 bytes>         trimmed as it grows (the steady state)
  xreadgroup    XREADGROUP GROUP g c COUNT 1 STREAMS s >    each call delivers one new entry and
                                                            makes it pending (the stream holds n
                                                            entries, loaded first, group at 0)

Before each xreadgroup run the stream is deleted, n entries are added with pipelined XADD,
and the group is created at 0, so every request finds an entry to deliver; the run is
checked afterwards (XPENDING's count equals the requests).

--memory-entries N: after the throughput runs, each server gets N `XADD s MAXLEN ~ 1000`
calls in batches, and its RSS (all processes) is sampled every N/10 entries. With
approximate trimming the stream holds about 1000 entries throughout, so the RSS must
level off: the figure reported is the growth over the second half of the load.

Servers: kvred (`--workers`, default 2) and redis-server 7, both with the AOF on under
--fsync (default everysec), in temporary directories, stopped by PID (bench/benchlib.py).
Writes streams.json and streams.md to --out (default bench/results/<ts>-streams).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from interpreter import use_repo_venv  # noqa: E402

if __name__ == "__main__":
    use_repo_venv()  # before any third-party import: may re-exec under .venv/bin/python

import benchlib  # noqa: E402
from benchlib import BENCH_DIR, HOST, Server, encode_command  # noqa: E402
from report import parse_redis_benchmark  # noqa: E402

PAYLOAD = "v" * 16
LOADS: dict[str, list[str]] = {
    "xadd": ["XADD", "s", "*", "f", PAYLOAD],
    "xadd-maxlen": ["XADD", "s", "MAXLEN", "~", "1000", "*", "f", PAYLOAD],
    "xreadgroup": ["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">"],
}
FILL_BATCH = 1000
RUN_TIMEOUT_S = 600


def pipelined(port: int, commands: list[list[str]], batch: int = FILL_BATCH) -> list[bytes]:
    """Send `commands` in pipelined batches; return the last reply's first line of each batch
    (errors raise)."""
    out = []
    with socket.create_connection((HOST, port), timeout=60) as sock:
        reader = sock.makefile("rb")
        for start in range(0, len(commands), batch):
            chunk = commands[start:start + batch]
            sock.sendall(b"".join(encode_command(*c) for c in chunk))
            for _ in chunk:
                line = _read_reply(reader)
                if line.startswith(b"-"):
                    raise RuntimeError(f"error reply: {line!r}")
            out.append(line)
    return out


def _read_reply(reader: Any) -> bytes:
    """Read one whole reply; return its first line."""
    line = reader.readline()
    kind, rest = line[:1], line[1:-2]
    if kind == b"$" and int(rest) >= 0:
        reader.read(int(rest) + 2)
    elif kind in (b"*", b"%") and int(rest) > 0:
        for _ in range(int(rest) * (2 if kind == b"%" else 1)):
            _read_reply(reader)
    return line


def prepare(server: Server, load: str, requests: int) -> None:
    benchlib.simple_command(server.port, "DEL", "s")
    if load == "xreadgroup":
        pipelined(server.port, [["XADD", "s", "*", "f", PAYLOAD]] * requests)
        benchlib.simple_command(server.port, "XGROUP", "CREATE", "s", "g", "0")


def check(server: Server, load: str, requests: int) -> str:
    """'' if the run did what it claims, else what is wrong."""
    if load == "xreadgroup":
        summary = benchlib.simple_command(server.port, "XINFO", "GROUPS", "s")
        reply = _pending_count(server.port)
        if reply != requests:
            return f"XPENDING count {reply}, expected {requests} ({summary[:80]!r})"
    elif load == "xadd":
        length = int(benchlib.simple_command(server.port, "XLEN", "s")[1:])
        if length != requests:
            return f"XLEN {length}, expected {requests}"
    else:
        length = int(benchlib.simple_command(server.port, "XLEN", "s")[1:])
        if not 1000 <= length <= 1200:
            return f"XLEN {length} after MAXLEN ~ 1000"
    return ""


def _pending_count(port: int) -> int:
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(encode_command("XPENDING", "s", "g"))
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"*4")
        return int(reader.readline()[1:-2])


def run_load(server: Server, load: str, clients: int, pipeline: int, requests: int) -> dict[str, Any]:
    argv = ["redis-benchmark", "-h", HOST, "-p", str(server.port), "-c", str(clients), "-P", str(pipeline),
            "-n", str(requests), "--csv", *LOADS[load]]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    rows = parse_redis_benchmark(proc.stdout)
    error = ""
    if proc.returncode != 0 or not rows:
        error = f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-300:]}"
    elif "Error" in proc.stderr:
        error = proc.stderr[-300:]
    else:
        error = check(server, load, requests)
    row = rows[0] if rows else {}
    return {"server": server.label, "load": load, "clients": clients, "pipeline": pipeline,
            "requests": requests, "rps": row.get("rps"), "p50_ms": row.get("p50_ms"),
            "p99_ms": row.get("p99_ms"), "error": error, "command": " ".join(argv)}


def memory_curve(server: Server, entries: int) -> list[tuple[int, int]]:
    """(entries added, RSS of all the server's processes) every entries/10."""
    step = max(entries // 10, FILL_BATCH)
    benchlib.simple_command(server.port, "DEL", "s")
    curve = [(0, _rss(server))]
    done = 0
    while done < entries:
        pipelined(server.port, [LOADS["xadd-maxlen"]] * step)
        done += step
        curve.append((done, _rss(server)))
    return curve


def _rss(server: Server) -> int:
    return sum(p.memory_info().rss for p in server.processes())


def median(values: list[float]) -> float | None:
    return benchlib.median(values) if values else None


def markdown(rows: list[dict[str, Any]], curves: dict[str, list[tuple[int, int]]], args: argparse.Namespace,
             info: dict[str, object], labels: list[str], commands: list[str]) -> str:
    lines = ["# Streams: kvred vs redis-server", "",
             f"redis-benchmark `-c {args.clients}`, `-n {args.requests}`, {args.repeats} repeats (median, [min-max]);"
             f" fsync {args.fsync}; kvred `--workers {args.workers}`.", "",
             "| load | -P | " + " | ".join(labels) + " | kvred / redis |", "|---|---:|" + "---:|" * (len(labels) + 1)]
    for load in args.loads:
        for pipeline in args.pipelines:
            cells, meds = [], {}
            for label in labels:
                got = [r["rps"] for r in rows if r["server"] == label and r["load"] == load
                       and r["pipeline"] == pipeline and not r["error"] and r["rps"]]
                meds[label] = median(got)
                cells.append(f"{meds[label]:,.0f} [{min(got):,.0f}-{max(got):,.0f}]" if got else "failed")
            kv, rd = meds.get(labels[0]), meds.get(labels[-1])
            ratio = f"{kv / rd:.2f}" if kv and rd else "-"
            lines.append(f"| {load} | {pipeline} | " + " | ".join(cells) + f" | {ratio} |")
    failed = [r for r in rows if r["error"]]
    if failed:
        lines += ["", "Failed runs:", ""] + [f"- {r['server']} {r['load']} -P {r['pipeline']}: {r['error']}"
                                             for r in failed]
    if curves:
        lines += ["", f"RSS (MiB, all processes) during {args.memory_entries:,} `XADD s MAXLEN ~ 1000 * f <16 B>`:", "",
                  "| entries | " + " | ".join(curves) + " |", "|---:|" + "---:|" * len(curves)]
        points = next(iter(curves.values()))
        for i, (count, _rss_value) in enumerate(points):
            lines.append(f"| {count:,} | " + " | ".join(f"{c[i][1] / 2**20:.1f}" for c in curves.values()) + " |")
        lines.append("")
        for label, curve in curves.items():
            half = curve[len(curve) // 2][1]
            lines.append(f"- {label}: {(curve[-1][1] - half) / 2**20:+.1f} MiB over the second half of the load")
    lines += ["", "Loads: `redis-benchmark -h 127.0.0.1 -p PORT -c C -P P -n N --csv <command>`, the command being:", ""]
    lines += [f"- {load}: `{' '.join(LOADS[load])}`" for load in args.loads]
    lines += ["", "Servers: " + "; ".join(f"`{command}`" for command in commands),
              "", "Machine:", "", benchlib.machine_markdown(info)]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loads", default=",".join(LOADS), help=f"comma-separated, of {','.join(LOADS)}")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--pipelines", default="1,16")
    ap.add_argument("-n", "--requests", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="kvred --workers")
    ap.add_argument("--fsync", default="everysec")
    ap.add_argument("--memory-entries", type=int, default=1_000_000, help="0: no memory curve")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    args.loads = args.loads.split(",")
    args.pipelines = [int(x) for x in args.pipelines.split(",")]
    for load in args.loads:
        if load not in LOADS:
            ap.error(f"unknown load {load}")
    benchlib.which_or_die("redis-benchmark")
    out = args.out or BENCH_DIR / "results" / f"{benchlib.timestamp()}-streams"
    out.mkdir(parents=True, exist_ok=True)
    info = benchlib.machine_info()
    rows: list[dict[str, Any]] = []
    curves: dict[str, list[tuple[int, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="kvred-streams-") as tmp:
        servers: list[Server] = []
        try:
            for i, make in enumerate([lambda d: benchlib.kvred_server(d, args.workers, args.fsync),
                                      lambda d: benchlib.redis_server(d, args.fsync)]):
                workdir = Path(tmp) / str(i)
                workdir.mkdir()
                servers.append(make(workdir).start())
                print(f"{servers[-1].label}: {servers[-1].command}", flush=True)
            for load in args.loads:
                for pipeline in args.pipelines:
                    for rep in range(args.repeats):
                        order = servers[rep % 2:] + servers[:rep % 2]
                        for server in order:
                            prepare(server, load, args.requests)
                            row = run_load(server, load, args.clients, pipeline, args.requests)
                            row["repeat"] = rep
                            rows.append(row)
                            print(f"{load:12} -P {pipeline:2} {server.label:13} {row['rps'] or 0:>12,.0f}/s "
                                  f"{row['error']}", flush=True)
            if args.memory_entries:
                for server in servers:
                    curves[server.label] = memory_curve(server, args.memory_entries)
                    print(f"{server.label}: RSS {[round(r / 2**20, 1) for _n, r in curves[server.label]]} MiB",
                          flush=True)
        finally:
            for server in servers:
                server.stop()
    labels = [s.label for s in servers]
    text = markdown(rows, curves, args, info, labels, [s.command for s in servers])
    (out / "streams.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                  "machine": info, "rows": rows, "memory": curves}, indent=1))
    (out / "streams.md").write_text(text)
    print()
    print(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
