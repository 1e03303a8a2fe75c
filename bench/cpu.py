#!/usr/bin/env python3
"""CPU time per request, per process role, kvred vs redis-server; and a scaling model.

    python bench/cpu.py                                 # SET/GET/PING_INLINE at c1/c50 x P1/P16
    python bench/cpu.py --tests default --clients 50 --pipelines 1
    python bench/cpu.py --workers-list 1,2 --model-cores 2,4,8,16

For each load (a `redis-benchmark -t TEST -c C -P P -n N -r 100000` run) and each server
(kvred per --workers-list value, and redis-server; the order rotates on every repeat), the
script reads the user and system CPU time of every process of the server from
/proc/<pid>/stat just before and just after the run, and the load generator's own CPU
time (its rusage), and divides by the requests. kvred's processes are told apart by the
names its supervisor gives them (prctl): `kvred-writer`, `kvred-workerN`, the supervisor.

The scaling model. With W workers on C cores, per request the writer needs `w` µs (on
one core: it is one process), the workers `k` µs in all (shared among them), the
supervisor `s`, the load generator `g` (when it runs on the same cores). Throughput is
bounded by
    the writer's core:           R <= 1e6 / w
    the workers:                 R <= min(W, C) * 1e6 / k        (each worker is one process)
    all the cores together:      R <= C * 1e6 / (w + k + s + g)
and redis-server's single thread by R <= 1e6 / r and R <= C * 1e6 / (r + g). The model's
prediction for the measured machine is compared with the measured throughput (its error
is reported), then given for --model-cores with the generator on other cores (g = 0), as
a load from other machines would be.

Writes cpu.json and cpu.md to --out (default bench/results/<ts>-cpu).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from interpreter import use_repo_venv  # noqa: E402

if __name__ == "__main__":
    use_repo_venv()  # before any third-party import: may re-exec under .venv/bin/python

import benchlib  # noqa: E402
from benchlib import BENCH_DIR, HOST, Server  # noqa: E402
from report import DEFAULT_SUITE, parse_redis_benchmark  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
DEFAULT_TESTS = "set,get,ping_inline"
RUN_TIMEOUT_S = 900


def process_times(pid: int) -> tuple[float, float] | None:
    """(user, system) CPU seconds of one process, from /proc (None: it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def roles(server: Server) -> dict[str, int]:
    """role -> pid: kvred's supervisor, writer and workers by their process names;
    redis-server as one role."""
    procs = server.processes()
    if server.kind != "kvred":
        return {"redis-server": procs[0].pid}
    out = {"supervisor": procs[0].pid}
    for p in procs[1:]:
        name = p.name()
        if name == "kvred-writer":
            out["writer"] = p.pid
        elif name.startswith("kvred-worker"):
            out[name.replace("kvred-", "")] = p.pid
    return out


def snapshot(pids: dict[str, int]) -> dict[str, tuple[float, float]]:
    return {role: times for role, pid in pids.items() if (times := process_times(pid)) is not None}


def run_load(server: Server, test: str, clients: int, pipeline: int, requests: int) -> dict[str, Any]:
    pids = roles(server)
    argv = ["redis-benchmark", "-h", HOST, "-p", str(server.port), "-t", test, "-c", str(clients),
            "-P", str(pipeline), "-n", str(requests), "-r", "100000", "--csv"]
    before = snapshot(pids)
    gen_before = os.times()
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    elapsed = time.perf_counter() - started
    gen_after = os.times()
    after = snapshot(pids)
    rows = [row for row in parse_redis_benchmark(proc.stdout) if row["test"].lower() == test
            or test == "ping_inline" and row["test"] == "PING_INLINE"]
    error = "" if proc.returncode == 0 and rows else f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-300:]}"
    per_request: dict[str, dict[str, float]] = {}
    for role, (user, system) in after.items():
        if role in before:
            u0, s0 = before[role]
            per_request[role] = {"user": (user - u0) * 1e6 / requests, "system": (system - s0) * 1e6 / requests}
    generator = ((gen_after.children_user - gen_before.children_user)
                 + (gen_after.children_system - gen_before.children_system)) * 1e6 / requests
    return {"server": server.label, "test": test, "clients": clients, "pipeline": pipeline, "requests": requests,
            "rps": rows[0]["rps"] if rows else None, "elapsed_s": elapsed, "cpu_us": per_request,
            "generator_us": generator, "error": error}


def totals(row: dict[str, Any]) -> dict[str, float]:
    """µs per request: writer, workers (summed), supervisor, redis, all."""
    cpu = row["cpu_us"]
    out = {"writer": 0.0, "workers": 0.0, "supervisor": 0.0, "redis": 0.0}
    for role, times in cpu.items():
        spent = times["user"] + times["system"]
        if role == "writer":
            out["writer"] += spent
        elif role.startswith("worker"):
            out["workers"] += spent
        elif role == "supervisor":
            out["supervisor"] += spent
        else:
            out["redis"] += spent
    out["all"] = sum(out.values())
    return out


def predict(t: dict[str, float], generator_us: float, workers: int, cores: int) -> float:
    """Requests/s the model allows (see the module docstring)."""
    if t["redis"]:
        return min(1e6 / t["redis"], cores * 1e6 / (t["redis"] + generator_us))
    bounds = [cores * 1e6 / (t["all"] + generator_us)]
    if t["writer"]:
        bounds.append(1e6 / t["writer"])
    if t["workers"]:
        bounds.append(min(workers, cores) * 1e6 / t["workers"])
    return min(bounds)


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    good = sorted((r for r in rows if not r["error"] and r["rps"]), key=lambda r: r["rps"])
    return good[len(good) // 2] if good else None


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace, info: dict[str, object],
             labels: list[str], workers_of: dict[str, int]) -> str:
    cores = os.cpu_count() or 1
    lines = ["# CPU per request, kvred vs redis-server", "",
             f"redis-benchmark `-n {args.requests} -r 100000`, {args.repeats} repeats (the run with the median"
             f" throughput shown), fsync {args.fsync}, {cores} cores. µs of CPU per request (user + system);"
             " `gen` is redis-benchmark's own.", "",
             "| test | -c | -P | server | req/s | writer | workers | supervisor | total | gen | total / redis |"
             " model req/s (error) |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    cells = sorted({(r["test"], r["clients"], r["pipeline"]) for r in rows},
                   key=lambda c: (args.tests.index(c[0]) if c[0] in args.tests else 99, c[1], c[2]))
    model_inputs: dict[tuple[Any, ...], dict[str, Any]] = {}
    for test, clients, pipeline in cells:
        redis_total = None
        chosen = {}
        for label in labels:
            row = median_row([r for r in rows if r["server"] == label and r["test"] == test
                              and r["clients"] == clients and r["pipeline"] == pipeline])
            chosen[label] = row
            if row is not None and label == "redis-server":
                redis_total = totals(row)["all"]
        for label in labels:
            row = chosen[label]
            if row is None:
                lines.append(f"| {test} | {clients} | {pipeline} | {label} | failed | | | | | | | |")
                continue
            t = totals(row)
            model = predict(t, row["generator_us"], workers_of.get(label, 1), cores)
            err = (model - row["rps"]) / row["rps"] * 100
            ratio = f"{t['all'] / redis_total:.2f}" if redis_total else "-"
            is_kvred = label != "redis-server"
            lines.append(f"| {test} | {clients} | {pipeline} | {label} | {row['rps']:,.0f} | "
                         + (f"{t['writer']:.2f} | {t['workers']:.2f} | {t['supervisor']:.2f}" if is_kvred else "| |")
                         + f" | {t['all']:.2f} | {row['generator_us']:.2f} | {ratio} | {model:,.0f} ({err:+.0f}%) |")
            model_inputs[(test, clients, pipeline, label)] = {"totals": t, "workers": workers_of.get(label, 1)}
    lines += ["", f"Scaling model (generator on other cores), requests/s for {args.model_cores} cores:", "",
              "| test | -c | -P | server | " + " | ".join(f"{c} cores" for c in args.model_cores) + " |",
              "|---|---:|---:|---|" + "---:|" * len(args.model_cores)]
    for (test, clients, pipeline, label), data in model_inputs.items():
        t = data["totals"]
        if label == "redis-server":
            preds = [predict(t, 0.0, 1, c) for c in args.model_cores]
        else:  # as many workers as the cores beside the writer's
            preds = [predict(t, 0.0, max(c - 1, 1), c) for c in args.model_cores]
        lines.append(f"| {test} | {clients} | {pipeline} | {label} | " + " | ".join(f"{p:,.0f}" for p in preds) + " |")
    lines += ["", "Machine:", "", benchlib.machine_markdown(info)]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tests", default=DEFAULT_TESTS, help="redis-benchmark -t names, or 'default' for its suite")
    ap.add_argument("--clients", default="1,50")
    ap.add_argument("--pipelines", default="1,16")
    ap.add_argument("-n", "--requests", type=int, default=200_000)
    ap.add_argument("--c1-requests", type=int, default=20_000, help="-n for -c 1 runs (slow)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers-list", default="1")
    ap.add_argument("--fsync", default="no")
    ap.add_argument("--model-cores", default="2,4,8,16")
    ap.add_argument("--baseline-tree", type=Path, default=None,
                    help="also run kvred from this checkout (e.g. a git worktree of the previous commit)"
                         " with the first --workers-list value: before/after figures in one run")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    args.tests = (DEFAULT_SUITE if args.tests == "default" else args.tests).split(",")
    clients = [int(x) for x in args.clients.split(",")]
    pipelines = [int(x) for x in args.pipelines.split(",")]
    args.model_cores = [int(x) for x in args.model_cores.split(",")]
    workers_list = [int(x) for x in args.workers_list.split(",")]
    benchlib.which_or_die("redis-benchmark")
    out = args.out or BENCH_DIR / "results" / f"{benchlib.timestamp()}-cpu"
    out.mkdir(parents=True, exist_ok=True)
    info = benchlib.machine_info()
    rows: list[dict[str, Any]] = []
    workers_of: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="kvred-cpu-") as tmp:
        servers: list[Server] = []
        try:
            makers = [(f"kvred{w}", lambda d, w=w: benchlib.kvred_server(d, w, args.fsync)) for w in workers_list]
            if args.baseline_tree:
                makers.append(("baseline", lambda d: benchlib.kvred_server(d, workers_list[0], args.fsync,
                                                                            tree=args.baseline_tree.resolve())))
            makers.append(("redis", lambda d: benchlib.redis_server(d, args.fsync)))
            for name, make in makers:
                workdir = Path(tmp) / name
                workdir.mkdir()
                servers.append(make(workdir).start())
                if servers[-1].workers:
                    workers_of[servers[-1].label] = servers[-1].workers or 1
                print(f"{servers[-1].label}: {servers[-1].command}", flush=True)
            for server in servers:  # warm up, and fill the keys GET reads
                subprocess.run(["redis-benchmark", "-h", HOST, "-p", str(server.port), "-t", "set", "-n", "100000",
                                "-r", "100000", "-P", "16", "-q"], capture_output=True, timeout=RUN_TIMEOUT_S)
            for test in args.tests:
                for c in clients:
                    for p in pipelines:
                        n = args.c1_requests if c == 1 else args.requests
                        for rep in range(args.repeats):
                            k = rep % len(servers)
                            for server in servers[k:] + servers[:k]:
                                row = run_load(server, test, c, p, n)
                                rows.append(row)
                                t = totals(row)
                                print(f"{test:12} -c {c:2} -P {p:2} {server.label:13} {row['rps'] or 0:>10,.0f}/s "
                                      f"writer {t['writer']:.2f} workers {t['workers']:.2f} total {t['all']:.2f} µs "
                                      f"{row['error']}", flush=True)
        finally:
            for server in servers:
                server.stop()
    labels = [s.label for s in servers]
    text = markdown(rows, args, info, labels, workers_of)
    (out / "cpu.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                              "machine": info, "rows": rows}, indent=1))
    (out / "cpu.md").write_text(text)
    print()
    print(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
