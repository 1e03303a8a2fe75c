"""Smoke tests of the benchmark tooling in bench/ (not of kvred's speed).

bench/client.py runs a tiny load of every mode against a kvred from
`kvred_factory` and must print the documented JSON fields; bench/report.py
--quick runs a one-cell matrix into a temporary directory and must write
summary.md, raw/results.json, raw/results.csv and its SVG charts. Every
subprocess has a timeout; the whole module takes a few seconds.

The scripts are run as bench/README.md says, `python bench/report.py ...` from the
repository, by a Python that has none of kvred's dependencies (a new shell where the
repository's .venv is not active): they must re-execute themselves under .venv/bin/python.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import venv
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO_ROOT, ServerProcess, require_tool

BENCH = REPO_ROOT / "bench"
CLIENT_TIMEOUT_S = 30.0
REPORT_TIMEOUT_S = 50.0
MODES = ("ping", "get", "exists", "set", "del", "mset", "incr")
ENTRY_POINTS = ("report.py", "memory.py", "fanout.py", "streams.py", "cpu.py", "writer_pass.py")


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Python with nothing installed (no psutil, no uvloop...): a fresh venv without pip."""
    env_dir = tmp_path_factory.mktemp("bare") / "venv"
    venv.create(env_dir, with_pip=False, symlinks=True)
    python = env_dir / "bin" / "python"
    probe = subprocess.run([python, "-c", "import psutil"], capture_output=True, timeout=30)
    assert probe.returncode != 0, "the bare interpreter must not see psutil"
    return str(python)


def bench_env(**extra: str) -> dict[str, str]:
    """A shell's environment without an active venv; the scripts find the repository's .venv
    (or, when the tests do not run from one, this interpreter via KVRED_BENCH_PYTHON)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "KVRED_BENCH_REEXEC")}
    if not (REPO_ROOT / ".venv" / "bin" / "python").exists():
        env["KVRED_BENCH_PYTHON"] = sys.executable
    env.update(extra)
    return env


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


@pytest.mark.parametrize("script", ENTRY_POINTS)
def test_entry_point_runs_without_an_active_venv(bare_python: str, script: str) -> None:
    result = subprocess.run([bare_python, f"bench/{script}", "--help"], cwd=REPO_ROOT, env=bench_env(),
                            capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {script}"), result.stdout
    assert "psutil" in result.stderr and "running under" in result.stderr, result.stderr


def test_entry_point_without_any_venv_says_what_to_install(bare_python: str, tmp_path: Path) -> None:
    env = bench_env(KVRED_BENCH_PYTHON=str(tmp_path / "no-such-venv" / "bin" / "python"))
    result = subprocess.run([bare_python, "bench/report.py", "--quick"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "psutil" in result.stderr and "python3 -m venv .venv && .venv/bin/pip install -e '.[bench]'" in result.stderr


def test_report_quick_writes_all_outputs(tmp_path: Path, bare_python: str) -> None:
    require_tool("redis-server")
    require_tool("redis-benchmark")
    out = tmp_path / "report"
    # as documented: `python bench/report.py --quick`, from the repository, no venv active
    argv = [bare_python, "bench/report.py", "--quick", "--fsync", "no", "--tests", "set",
            "-n", "2000", "--repeats", "1", "--workers-list", "1", "--clients", "10", "--pipelines", "1",
            "--warmup", "500", "--tmpdir", str(tmp_path), "--out", str(out)]
    result = subprocess.run(argv, cwd=REPO_ROOT, env=bench_env(), capture_output=True, text=True,
                            timeout=REPORT_TIMEOUT_S, stdin=subprocess.DEVNULL)
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
                "--workers-list", "2", "--baseline-tree", str(REPO_ROOT)]
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
        # the baseline checkout (this one again) runs beside, labelled with its commit
        assert {row["server"] for row in data["rows"]} == {"kvred w=2", f"kvred w=2 @{short_commit()}", "redis-server"}
        assert "Scaling model" in (out / "cpu.md").read_text()
        assert (out / "scaling.png").read_bytes().startswith(b"\x89PNG")
    else:
        assert {row["load"] for row in data["rows"]} == {"xadd", "xadd-maxlen", "xreadgroup"}
        assert set(data["memory"]) == {"kvred w=2", "redis-server"}


def short_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()


@pytest.mark.parametrize("aof", [False, True])
def test_writer_pass_prices_a_pass(aof: bool) -> None:
    """bench/writer_pass.py runs whole writer passes in one process and prices a command."""
    argv = [sys.executable, str(BENCH / "writer_pass.py"), "--rounds", "200", "--entries", "4", "--commands", "3"]
    result = subprocess.run(argv + (["--aof"] if aof else []), capture_output=True, text=True,
                            timeout=REPORT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        f"{kind} x3 per entry, 4 entries per pass{' +AOF' if aof else ''}" for kind in ("set", "get")]
    for line in lines:
        assert int(line.split(": ")[1].split(" ")[0].replace(",", "")) > 0, line


# --------------------------------------------------------------------- charts

# A quick run's medians (bench/report.py --quick on 2 cores): every panel spans less than a
# decade, where a log axis had one tick label or none, and the legend sat on a bar.
QUICK_RPS = {  # (clients, pipeline) -> test -> (kvred w=1, kvred w=2, redis-server)
    (50, 1): {"PING_INLINE": (18_400, 24_300, 53_200), "PING_MBULK": (20_600, 33_300, 68_500),
              "SET": (27_600, 25_300, 42_000), "GET": (31_600, 24_500, 49_500)},
    (50, 16): {"PING_INLINE": (139_100, 208_700, 500_800), "PING_MBULK": (238_500, 263_600, 715_400),
               "SET": (98_200, 119_200, 263_600), "GET": (143_100, 166_900, 417_300)},
}
SERVERS = (("kvred w=1", "kvred", 1), ("kvred w=2", "kvred", 2), ("redis-server", "redis", None))


def quick_run_records() -> list[dict[str, object]]:
    records: list[dict[str, object]] = []
    for (clients, pipeline), tests in QUICK_RPS.items():
        for test, rates in tests.items():
            for (server, kind, workers), rps in zip(SERVERS, rates, strict=True):
                p50 = 1000.0 * clients / rps * pipeline / 16 + 0.5
                for tool in ("redis-benchmark", "client"):
                    records.append({"fsync": "everysec", "tool": tool, "test": test, "clients": clients,
                                    "pipeline": pipeline, "server": server, "server_kind": kind,
                                    "workers": workers, "rps": rps, "p50_ms": p50, "p99_ms": 2.5 * p50,
                                    "p999_ms": 4 * p50, "error": ""})
    return records


def test_every_chart_is_readable() -> None:
    """Each panel has at least three y labels in view and a label under every group, and no
    legend covers a bar: what the PNGs of a quick run showed after the fix."""
    sys.path.insert(0, str(BENCH))
    import report
    from matplotlib.transforms import Bbox

    figures = report.chart_figures(quick_run_records())
    assert [name for name, _ in figures] == ["throughput_everysec.svg", "throughput_vs_workers.svg",
                                             "latency_client.svg"]
    for name, fig in figures:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]
        assert legends, name
        for ax in fig.axes:
            panel = ax.get_title() or ax.get_title(loc="left")
            low, high = sorted(ax.get_ylim())
            labels = [t.get_text() for t in ax.get_yticklabels()
                      if t.get_text() and low <= t.get_position()[1] <= high]
            assert len(labels) >= 3, f"{name} {panel!r}: y labels {labels}"
            assert all(t.get_text() for t in ax.get_xticklabels()), f"{name} {panel!r}"
            for bar in ax.patches:
                if bar.get_height() <= 0:
                    continue
                # what is drawn: a log axis clips a bar that starts at 0 to the panel
                box = Bbox.intersection(bar.get_window_extent(renderer), ax.get_window_extent(renderer))
                if box is None:
                    continue
                for legend in legends:
                    assert not legend.get_window_extent(renderer).overlaps(box), \
                        f"{name} {panel!r}: the legend covers a bar"
        import matplotlib.pyplot as plt

        plt.close(fig)
