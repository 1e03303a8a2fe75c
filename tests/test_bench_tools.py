"""Smoke tests of the benchmark tooling in bench/ (not of kvred's speed).

bench/client.py runs a tiny load of every mode against a kvred from
`kvred_factory` and must print the documented JSON fields; bench/report.py
--quick runs a one-cell matrix into a temporary directory and must write
summary.md, raw/results.json, raw/results.csv and its SVG charts. Every
subprocess has a timeout; the whole module takes a few seconds.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO_ROOT, ServerProcess, require_tool

BENCH = REPO_ROOT / "bench"
CLIENT_TIMEOUT_S = 30.0
REPORT_TIMEOUT_S = 50.0
MODES = ("ping", "get", "exists", "set", "del", "mset", "incr")


@pytest.fixture(scope="module")
def bench_kvred(kvred_factory: Callable[..., ServerProcess]) -> ServerProcess:
    return kvred_factory(workers=1, fsync="no")


def run_client(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCH / "client.py"), "--port", str(server.port), *args],
                          capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("mode", MODES)
def test_client_json_output(bench_kvred: ServerProcess, mode: str) -> None:
    result = run_client(bench_kvred, "--mode", mode, "-n", "300", "--pipeline", "4", "--connections", "3",
                        "--format", "json")
    assert result.returncode == 0, f"stdout={result.stdout!r} stderr={result.stderr!r}"
    data = json.loads(result.stdout)
    assert data["mode"] == mode
    assert data["requests"] == 300
    assert data["pipeline"] == 4
    assert data["connections"] == 3
    assert data["port"] == bench_kvred.port
    assert data["errors"] == 0 and data["first_error"] is None
    assert data["ops_per_sec"] > 0 and data["elapsed_s"] > 0
    assert data["batches"] == 75  # 300 requests in batches of 4
    lat = data["latency_ms"]
    assert set(lat) >= {"p50", "p99", "p999", "min", "max", "mean"}
    assert 0 < lat["min"] <= lat["p50"] <= lat["p99"] <= lat["p999"] <= lat["max"]


def test_client_text_output_and_uneven_split(bench_kvred: ServerProcess) -> None:
    # 101 requests over 2 connections in batches of 16: the last batch is short.
    result = run_client(bench_kvred, "--mode", "set", "-n", "101", "--pipeline", "16", "--connections", "2")
    assert result.returncode == 0, result.stderr
    assert "ops/s" in result.stdout and "p99.9" in result.stdout
    assert result.stdout.startswith("SET: 101 requests")


def test_report_quick_writes_all_outputs(tmp_path: Path) -> None:
    require_tool("redis-server")
    require_tool("redis-benchmark")
    out = tmp_path / "report"
    argv = [sys.executable, str(BENCH / "report.py"), "--quick", "--fsync", "no", "--tests", "set",
            "-n", "2000", "--repeats", "1", "--workers-list", "1", "--clients", "10", "--pipelines", "1",
            "--warmup", "500", "--tmpdir", str(tmp_path), "--out", str(out)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=REPORT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"stdout={result.stdout[-2000:]}\nstderr={result.stderr[-4000:]}"

    summary = (out / "summary.md").read_text()
    assert "kvred w=1 / redis" in summary and "## Machine" in summary and "redis-benchmark -h 127.0.0.1" in summary

    data = json.loads((out / "raw" / "results.json").read_text())
    assert data["meta"]["status"] == "complete"
    records = data["results"]
    # 2 tools x 1 cell x 1 repeat x 2 servers
    assert len(records) == 4
    assert {(r["tool"], r["server"]) for r in records} == {
        (tool, server) for tool in ("redis-benchmark", "client") for server in ("kvred w=1", "redis-server")}
    for r in records:
        assert not r["error"], r
        assert r["test"] == "SET" and r["rps"] > 0 and r["fsync"] == "no"

    with open(out / "raw" / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and all(float(row["rps"]) > 0 for row in rows)

    svgs = sorted(p.name for p in out.glob("*.svg"))
    assert "throughput_no.svg" in svgs and "latency_client.svg" in svgs, svgs
    for name in svgs:
        assert (out / name).read_text().lstrip().startswith(("<?xml", "<svg"))
    # The data directories are temporary; nothing of the servers may be left in tmp.
    assert not list(tmp_path.glob("kvred-bench-*"))


@pytest.mark.parametrize("script", ["cpu", "streams"])
def test_cpu_and_streams_tools_run(tmp_path: Path, script: str) -> None:
    """bench/cpu.py finds every kvred process by role and prices each per request;
    bench/streams.py runs its three loads and checks each run's effect."""
    require_tool("redis-server")
    require_tool("redis-benchmark")
    out = tmp_path / script
    if script == "cpu":
        args = ["--tests", "set", "--clients", "10", "--pipelines", "1", "-n", "3000", "--repeats", "1",
                "--workers-list", "2"]
    else:
        args = ["--pipelines", "1", "-n", "2000", "--repeats", "1", "--memory-entries", "20000"]
    result = subprocess.run([sys.executable, str(BENCH / f"{script}.py"), *args, "--out", str(out)],
                            capture_output=True, text=True, timeout=REPORT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"stdout={result.stdout[-2000:]}\nstderr={result.stderr[-4000:]}"
    data = json.loads((out / f"{script}.json").read_text())
    assert data["rows"] and not any(row["error"] for row in data["rows"]), data["rows"]
    if script == "cpu":
        kvred = next(row for row in data["rows"] if row["server"] == "kvred w=2")
        assert {"supervisor", "writer", "worker0", "worker1"} <= set(kvred["cpu_us"]), kvred["cpu_us"]
        assert "Scaling model" in (out / "cpu.md").read_text()
    else:
        assert {row["load"] for row in data["rows"]} == {"xadd", "xadd-maxlen", "xreadgroup"}
        assert set(data["memory"]) == {"kvred w=2", "redis-server"}
