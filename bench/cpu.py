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
from collections.abc import Callable
from functools import partial
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
    # `-t lrange` runs LRANGE_100, _300, _500 and _600, `-t mset` is "MSET (10 keys)": one
    # row per test run, each of `requests`; their CPU is priced over all of them together
    rows = [row for row in parse_redis_benchmark(proc.stdout)
            if (name := row["test"].lower()) == test or name.startswith((test + "_", test + " "))]
    error = "" if proc.returncode == 0 and rows else f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-300:]}"
    rps = None
    if rows:
        rps = len(rows) * requests / sum(requests / row["rps"] for row in rows)  # over the whole run
        requests *= len(rows)
    per_request: dict[str, dict[str, float]] = {}
    for role, (user, system) in after.items():
        if role in before:
            u0, s0 = before[role]
            per_request[role] = {"user": (user - u0) * 1e6 / requests, "system": (system - s0) * 1e6 / requests}
    generator = ((gen_after.children_user - gen_before.children_user)
                 + (gen_after.children_system - gen_before.children_system)) * 1e6 / requests
    return {"server": server.label, "test": test, "clients": clients, "pipeline": pipeline, "requests": requests,
            "rps": rps, "elapsed_s": elapsed, "cpu_us": per_request,
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
             labels: list[str], workers_of: dict[str, int]) -> tuple[str, dict[tuple[Any, ...], dict[str, Any]]]:
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
    return "\n".join(lines) + "\n", model_inputs


def scaling_chart(out: Path, model_inputs: dict[tuple[Any, ...], dict[str, Any]], rows: list[dict[str, Any]],
                  max_cores: int = 16) -> str | None:
    """scaling.png: the model's requests/s against cores (generator elsewhere) for each
    CPU-bound load (-c > 1), kvred with cores - 1 workers next to redis-server, and what
    this machine measured (its generator on the same cores) as points. None without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    loads = sorted({key[:3] for key in model_inputs if key[1] > 1}, key=lambda k: (k[0], k[1], k[2]))
    if not loads:
        return None
    cores = list(range(1, max_cores + 1))
    ncols = min(3, len(loads))
    nrows = -(-len(loads) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), squeeze=False)
    for ax in axes.flat[len(loads):]:
        ax.set_visible(False)
    here = os.cpu_count() or 1
    for ax, (test, clients, pipeline) in zip(axes.flat, loads, strict=False):
        for (t, c, p, label), data in model_inputs.items():
            if (t, c, p) != (test, clients, pipeline):
                continue
            totals_ = data["totals"]
            is_redis = label == "redis-server"
            if not is_redis and data["workers"] != min(d["workers"] for k, d in model_inputs.items()
                                                      if k[:3] == (t, c, p) and k[3] != "redis-server"):
                continue  # one kvred line per load: the costs measured with the fewest workers
            ys = [predict(totals_, 0.0, 1 if is_redis else max(n - 1, 1), n) for n in cores]
            ax.plot(cores, ys, label=f"{label} (model)", color="tab:red" if is_redis else "tab:blue",
                    ls="--" if is_redis else "-")
        for label in {key[3] for key in model_inputs}:
            row = median_row([r for r in rows if r["server"] == label and r["test"] == test
                              and r["clients"] == clients and r["pipeline"] == pipeline])
            if row is not None:
                ax.plot([here], [row["rps"]], marker="o" if label == "redis-server" else "^", ls="",
                        color="tab:red" if label == "redis-server" else "tab:blue", label=f"{label} measured")
        ax.set_title(f"{test.upper()} -c {clients} -P {pipeline}")
        ax.set_xlabel("cores")
        ax.set_xticks([1, 2, 4, 8, 12, 16])
        ax.set_ylabel("requests/s")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Scaling model: kvred (writer on one core, cores - 1 workers) vs redis-server", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "scaling.png", dpi=110)
    plt.close(fig)
    return "scaling.png"


def write_outputs(out: Path, rows: list[dict[str, Any]], args: argparse.Namespace, info: dict[str, object],
                  labels: list[str], workers_of: dict[str, int]) -> str:
    """cpu.md (and scaling.png beside it); returns the markdown."""
    text, model_inputs = markdown(rows, args, info, labels, workers_of)
    chart = scaling_chart(out, model_inputs, rows)
    if chart:
        text += f"\n![scaling model]({chart})\n"
    (out / "cpu.md").write_text(text)
    return text


def render_again(out: Path) -> None:
    data = json.loads((out / "cpu.json").read_text())
    rows = data["rows"]
    saved = data["args"]
    labels = list(dict.fromkeys(row["server"] for row in rows))
    args = argparse.Namespace(tests=list(dict.fromkeys(row["test"] for row in rows)), requests=saved["requests"],
                              repeats=saved["repeats"], fsync=saved["fsync"],
                              model_cores=[int(c) for c in saved["model_cores"].strip("[]").split(",")])
    workers_of = {label: int(label.split("w=")[1].split()[0]) for label in labels if "w=" in label}
    print(write_outputs(out, rows, args, data["machine"], labels, workers_of))


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
    ap.add_argument("--render", type=Path, default=None, metavar="DIR",
                    help="remake DIR/cpu.md and DIR/scaling.png from DIR/cpu.json (an earlier run) and stop")
    args = ap.parse_args()
    if args.render:
        render_again(args.render)
        return
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
            # (name, how to make it in a directory): the kvreds, a baseline checkout's, redis-server
            makers: list[tuple[str, Callable[[Path], Server]]] = [
                (f"kvred{w}", partial(benchlib.kvred_server, workers=w, fsync=args.fsync)) for w in workers_list]
            if args.baseline_tree:
                makers.append(("baseline", partial(benchlib.kvred_server, workers=workers_list[0], fsync=args.fsync,
                                                   tree=args.baseline_tree.resolve())))
            makers.append(("redis", partial(benchlib.redis_server, fsync=args.fsync)))
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
    text = write_outputs(out, rows, args, info, labels, workers_of)
    (out / "cpu.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                              "machine": info, "rows": rows}, indent=1))
    print()
    print(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
