#!/usr/bin/env python3
"""Memory use and AOF start-up time: kvred vs redis-server.

    python bench/memory.py                       # 1M keys, 100-byte values
    python bench/memory.py --keys 100000 --workers-list 1,2 --repeats 3

Memory: each server is started empty in its own temporary directory (kvred
with --fsync everysec, redis-server with appendonly yes / appendfsync
everysec), then --keys keys with --value-size-byte values are loaded with
pipelined MSETs (100 keys per MSET, 100 MSETs per write) from one
connection. Reported: RSS summed over all processes of the server (kvred:
supervisor, writer and workers; psutil), also PSS (which does not count pages
shared after fork twice), before and after loading; redis-server's INFO
used_memory too.

Start-up: one AOF of canonical RESP SET commands (the same keys and values) is
written once; each start copies it into a fresh directory (kvred: kvred.aof;
redis-server: --appendonly yes --appendfilename bench.aof, which Redis 7
migrates from the old single-file format into appendonlydir/, as its log
shows) and times the start until PING answers +PONG and DBSIZE equals --keys.
An empty start (no AOF) is timed as well: the fixed cost of starting.

Per type (--types): for each value type a fresh server of each kind receives
--elements elements into one list (RPUSH), one hash (HSET), one set (SADD), one sorted
set (ZADD), and --elements/10 small hashes of 2 fields each (HSET), 100 elements per
command, pipelined; reported: the RSS growth over the empty server, kvred against
redis-server.

Writes memory.json and memory.md to --out (default bench/results/<ts>-memory).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from interpreter import use_repo_venv  # noqa: E402

if __name__ == "__main__":
    use_repo_venv()  # before any third-party import: may re-exec under .venv/bin/python

import benchlib  # noqa: E402
from benchlib import BENCH_DIR, HOST, Server, median  # noqa: E402

MSET_KEYS = 100
MSETS_PER_WRITE = 100
KEY_FORMAT = b"key:%012d"


def value_for(i: int, size: int) -> bytes:
    return (b"%012d" % i * (size // 12 + 1))[:size]


def load_keys(port: int, keys: int, value_size: int, timeout: float = 60.0) -> float:
    """Load keys 0..keys-1 with pipelined MSETs; return the seconds taken."""
    t0 = time.perf_counter()
    vhead = b"$%d\r\n" % value_size
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        i = 0
        while i < keys:
            parts = []
            commands = 0
            while i < keys and commands < MSETS_PER_WRITE:
                k = min(MSET_KEYS, keys - i)
                parts.append(b"*%d\r\n$4\r\nMSET\r\n" % (1 + 2 * k))
                for j in range(i, i + k):
                    parts.append(b"$16\r\n" + KEY_FORMAT % j + b"\r\n" + vhead + value_for(j, value_size) + b"\r\n")
                i += k
                commands += 1
            sock.sendall(b"".join(parts))
            expected = b"+OK\r\n" * commands
            buf = b""
            while len(buf) < len(expected):
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed the connection while loading")
                buf += chunk
                if not expected.startswith(buf[: len(expected)]):
                    raise RuntimeError(f"unexpected reply while loading: {buf[:200]!r}")
    return time.perf_counter() - t0


def write_aof(path: Path, keys: int, value_size: int) -> float:
    """The same keys as load_keys(), as canonical RESP SET commands."""
    t0 = time.perf_counter()
    vhead = b"$%d\r\n" % value_size
    with open(path, "wb", buffering=1 << 20) as f:
        for start in range(0, keys, 10_000):
            f.write(b"".join(b"*3\r\n$3\r\nSET\r\n$16\r\n" + KEY_FORMAT % j + b"\r\n" + vhead
                             + value_for(j, value_size) + b"\r\n" for j in range(start, min(keys, start + 10_000))))
    return time.perf_counter() - t0


def info_field(port: int, section: str, name: str) -> str | None:
    body = benchlib.simple_command(port, "INFO", section).decode(errors="replace")
    m = re.search(rf"^{re.escape(name)}:(.*)$", body, re.M)
    return m.group(1).strip() if m else None


def mib(n: float | None) -> str:
    return "–" if n is None else f"{n / 2**20:,.1f} MiB"


def _servers(workdir: Callable[[str], Path], workers_list: list[int], redis_bin: str) -> list[Server]:
    out = [benchlib.kvred_server(workdir(f"kvred-w{w}"), w, "everysec") for w in workers_list]
    out.append(benchlib.redis_server(workdir("redis"), "everysec", binary=redis_bin))
    return out


def measure_memory(keys: int, value_size: int, workers_list: list[int], redis_bin: str, root: Path,
                   log: Callable[[str], None]) -> list[dict[str, Any]]:
    rows = []

    def workdir(name: str) -> Path:
        path = root / f"mem-{name}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    for server in _servers(workdir, workers_list, redis_bin):
        log(f"memory: {server.label}: loading {keys:,} keys")
        server.start(timeout=120)
        try:
            time.sleep(0.5)
            empty = benchlib.tree_memory(server)
            load_s = load_keys(server.port, keys, value_size)
            size = benchlib.dbsize(server.port)
            time.sleep(1.0)  # let the writer/fsync settle
            loaded = benchlib.tree_memory(server)
            used = info_field(server.port, "memory", "used_memory") if server.kind == "redis" else None
        finally:
            server.stop()
        rows.append({
            "server": server.label, "kind": server.kind, "workers": server.workers, "keys": keys,
            "value_size": value_size, "dbsize": size, "load_s": round(load_s, 3),
            "load_keys_per_s": round(keys / load_s) if load_s else None,
            "processes": loaded["processes"],
            "rss_empty_bytes": empty["rss_bytes"], "rss_loaded_bytes": loaded["rss_bytes"],
            "pss_empty_bytes": empty["pss_bytes"], "pss_loaded_bytes": loaded["pss_bytes"],
            "rss_per_key_bytes": round((loaded["rss_bytes"] - empty["rss_bytes"]) / keys, 1),
            "redis_used_memory_bytes": int(used) if used else None,
            "per_process": loaded["per_process"], "command": server.command,
        })
    return rows


def _element(i: int) -> bytes:
    return b"element:%012d" % i


def _type_commands(kind: str, elements: int) -> Iterator[list[bytes]]:
    """The commands that load `elements` elements of `kind`, 100 per command."""
    for start in range(0, elements, 100):
        chunk = range(start, min(elements, start + 100))
        if kind == "list":
            yield [b"RPUSH", b"biglist", *(_element(i) for i in chunk)]
        elif kind == "hash":
            yield [b"HSET", b"bighash", *(x for i in chunk for x in (_element(i), b"v%09d" % i))]
        elif kind == "set":
            yield [b"SADD", b"bigset", *(_element(i) for i in chunk)]
        elif kind == "zset":
            yield [b"ZADD", b"bigzset", *(x for i in chunk for x in (b"%d.5" % i, _element(i)))]
        elif kind == "small-hashes":
            for i in range(start // 10, min(elements, start + 100) // 10):
                yield [b"HSET", b"hash:%012d" % i, b"name", b"n%09d" % i, b"count", b"%d" % i]
        else:
            raise ValueError(kind)


TYPE_LOADS = ("list", "hash", "set", "zset", "small-hashes")


def load_commands(port: int, commands: Iterator[list[bytes]], timeout: float = 120.0) -> float:
    """Send `commands` pipelined (100 per write); each must get an integer reply."""
    t0 = time.perf_counter()
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        while True:
            batch = [c for _, c in zip(range(100), commands, strict=False)]
            if not batch:
                break
            sock.sendall(b"".join(benchlib.encode_command(*c) for c in batch))
            buf = b""
            while buf.count(b"\r\n") < len(batch):
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed the connection while loading")
                buf += chunk
            if any(not line.startswith(b":") for line in buf.split(b"\r\n")[:-1]):
                raise RuntimeError(f"unexpected reply while loading: {buf[:200]!r}")
    return time.perf_counter() - t0


def measure_types(elements: int, workers: int, redis_bin: str, root: Path,
                  log: Callable[[str], None]) -> list[dict[str, Any]]:
    rows = []
    for kind in TYPE_LOADS:
        def workdir(name: str, kind: str = kind) -> Path:
            return _fresh_dir(root, f"type-{kind}", name)

        for server in _servers(workdir, [workers], redis_bin):
            log(f"memory per type: {server.label}: {kind}, {elements:,} elements")
            server.start(timeout=120)
            try:
                time.sleep(0.5)
                empty = benchlib.tree_memory(server)
                load_s = load_commands(server.port, _type_commands(kind, elements))
                time.sleep(1.0)
                loaded = benchlib.tree_memory(server)
            finally:
                server.stop()
            rows.append({"type": kind, "server": server.label, "kind": server.kind, "elements": elements,
                         "load_s": round(load_s, 3), "rss_growth_bytes": loaded["rss_bytes"] - empty["rss_bytes"]})
    return rows


def _fresh_dir(root: Path, prefix: str, name: str) -> Path:
    path = root / f"{prefix}-{name}"
    path.mkdir(parents=True)
    return path


def measure_startup(keys: int, value_size: int, workers_list: list[int], redis_bin: str, root: Path,
                    repeats: int, log: Callable[[str], None]) -> dict[str, Any]:
    aof = root / "startup-source.aof"
    write_s = write_aof(aof, keys, value_size)
    log(f"start-up: wrote {aof.stat().st_size / 2**20:.1f} MiB AOF ({keys:,} SETs) in {write_s:.1f} s")
    runs: list[dict[str, Any]] = []
    redis_log: list[str] = []
    commands: dict[str, str] = {}
    labels: list[str] = []
    for rep in range(repeats):
        for with_aof in (True, False):
            prefix = f"start-{rep}-{'aof' if with_aof else 'empty'}"
            servers = _servers(functools.partial(_fresh_dir, root, prefix), workers_list, redis_bin)
            k = rep % len(servers)
            for server in servers[k:] + servers[:k]:  # alternate the order every repeat
                if server.label not in labels:
                    labels.append(server.label)
                if with_aof:
                    if server.kind == "redis":
                        server.argv += ["--appendfilename", "bench.aof"]
                        shutil.copyfile(aof, server.dir / "bench.aof")
                    else:
                        shutil.copyfile(aof, server.dir / "kvred.aof")
                    commands.setdefault(server.label, server.command)
                log(f"start-up {rep + 1}/{repeats}: {server.label} {'with AOF' if with_aof else 'empty'}")
                server.spawn()
                try:
                    seconds = server.wait_ready(timeout=1800, keys=keys if with_aof else 0)
                finally:
                    server.stop()
                runs.append({"server": server.label, "repeat": rep, "aof": with_aof, "seconds": round(seconds, 4)})
                if server.kind == "redis" and with_aof:
                    text = server.log_tail(20000)
                    m = re.search(r"DB loaded from append only file: ([0-9.]+) seconds", text)
                    runs[-1]["redis_reported_s"] = float(m.group(1)) if m else None
                    if not redis_log:
                        redis_log = [line.split(" ", 4)[-1] for line in text.splitlines()
                                     if "AOF" in line or "append only" in line]
                shutil.rmtree(server.dir, ignore_errors=True)
    aof_size = aof.stat().st_size
    aof.unlink()
    summary = {}
    for label in labels:
        for with_aof in (True, False):
            vals = [r["seconds"] for r in runs if r["server"] == label and r["aof"] == with_aof]
            if vals:
                summary[f"{label}|{'aof' if with_aof else 'empty'}"] = {
                    "median": median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}
    return {"keys": keys, "value_size": value_size, "aof_bytes": aof_size, "aof_write_s": round(write_s, 3),
            "runs": runs, "summary": summary, "labels": labels, "redis_log": redis_log, "commands": commands}


def render_markdown(data: dict[str, Any]) -> str:
    keys, vsize = data["keys"], data["value_size"]
    lines = [f"# Memory and start-up ({keys:,} keys, {vsize}-byte values)", ""]
    mem = data.get("memory") or []
    redis = next((r for r in mem if r["kind"] == "redis"), None)
    if mem:
        lines += [f"## Memory after loading {keys:,} keys (pipelined MSET, {MSET_KEYS} keys each)", "",
                  "RSS is summed over every process of the server (kvred: supervisor + writer + workers); "
                  "PSS splits pages shared between forked processes, so it does not count them twice.", "",
                  "| server | processes | RSS empty | RSS loaded | PSS loaded | RSS per key | RSS / redis | load |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in mem:
            rel = f"{r['rss_loaded_bytes'] / redis['rss_loaded_bytes']:.2f}" if redis else "–"
            lines.append(f"| {r['server']} | {r['processes']} | {mib(r['rss_empty_bytes'])} | "
                         f"{mib(r['rss_loaded_bytes'])} | {mib(r['pss_loaded_bytes'])} | "
                         f"{r['rss_per_key_bytes']:.0f} B | {rel} | {r['load_s']:.1f} s "
                         f"({r['load_keys_per_s']:,} keys/s) |")
        if redis and redis.get("redis_used_memory_bytes"):
            lines += ["", f"redis-server INFO used_memory: {mib(redis['redis_used_memory_bytes'])}."]
        bad = [r for r in mem if r["dbsize"] != keys]
        for r in bad:
            lines.append(f"\n**{r['server']}: DBSIZE {r['dbsize']} after loading, expected {keys}.**")
        lines.append("")
        lines.append("Per process (loaded):")
        lines.append("")
        for r in mem:
            for p in r["per_process"]:
                lines.append(f"- {r['server']}: pid {p['pid']} `{p['name']}` RSS {mib(p['rss'])}, "
                             f"PSS {mib(p['pss'])}, USS {mib(p['uss'])}")
        lines.append("")
    per_type = data.get("types") or []
    if per_type:
        lines += ["## Memory per value type", "",
                  "RSS growth over the empty server after loading the elements (one fresh server per row).", "",
                  "| load | elements | kvred growth | redis-server growth | kvred / redis | load time kvred / redis |",
                  "|---|---:|---:|---:|---:|---:|"]
        for kind in TYPE_LOADS:
            k = next((r for r in per_type if r["type"] == kind and r["kind"] == "kvred"), None)
            r = next((r for r in per_type if r["type"] == kind and r["kind"] == "redis"), None)
            if not k or not r:
                continue
            ratio = f"{k['rss_growth_bytes'] / r['rss_growth_bytes']:.2f}" if r["rss_growth_bytes"] > 0 else "–"
            lines.append(f"| {kind} | {k['elements']:,} | {mib(k['rss_growth_bytes'])} | {mib(r['rss_growth_bytes'])} "
                         f"| {ratio} | {k['load_s']:.1f} s / {r['load_s']:.1f} s |")
        lines.append("")
    st = data.get("startup")
    if st:
        lines += [f"## Start-up: replaying a {keys:,}-key AOF ({st['aof_bytes'] / 2**20:.1f} MiB of SET commands)",
                  "", "Seconds from spawning the server until PING answers +PONG and DBSIZE equals the key count "
                  f"(median [min–max] over {max(s['n'] for s in st['summary'].values())} start(s) of each); 'empty' is a start "
                  "without an AOF.", "",
                  "| server | with AOF | empty | AOF load time / redis-server's |", "|---|---:|---:|---:|"]
        summ = st["summary"]
        ref = summ.get("redis-server|aof")
        for label in st["labels"]:
            a, e = summ.get(f"{label}|aof"), summ.get(f"{label}|empty")

            def fmt(x: dict[str, Any] | None) -> str:
                if not x:
                    return "–"
                return f"{x['median']:.3f} s" + (f" [{x['min']:.3f}–{x['max']:.3f}]" if x["n"] > 1 else "")

            rel = f"{a['median'] / ref['median']:.2f}" if a and ref and ref["median"] else "–"
            lines.append(f"| {label} | {fmt(a)} | {fmt(e)} | {rel} |")
        reported = [r["redis_reported_s"] for r in st["runs"] if r.get("redis_reported_s") is not None]
        if reported:
            lines += ["", f"redis-server's own log says \"DB loaded from append only file\" in {median(reported):.3f} s "
                      f"(median); the rest of its time above is process start and the readiness polling."]
        if st["redis_log"]:
            lines += ["", "redis-server's log about the file:", "", "```", *st["redis_log"], "```"]
        lines += ["", "Start commands (AOF runs):", "", "```", *st["commands"].values(), "```", ""]
    return "\n".join(lines)


def run_all(keys: int, workers_list: list[int], out: Path, repeats: int = 3, value_size: int = 100,
            redis_bin: str = "redis-server", tmpdir: Path | None = None,
            log: Callable[[str], None] = print, memory: bool = True, startup: bool = True,
            types_elements: int = 0) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="kvred-memory-", dir=tmpdir))
    data: dict[str, Any] = {"keys": keys, "value_size": value_size, "workers_list": workers_list}
    try:
        if memory:
            data["memory"] = measure_memory(keys, value_size, workers_list, redis_bin, root, log)
            _write(out, data)
        if types_elements:
            data["types"] = measure_types(types_elements, workers_list[0], redis_bin, root, log)
            _write(out, data)
        if startup:
            data["startup"] = measure_startup(keys, value_size, workers_list, redis_bin, root, repeats, log)
            _write(out, data)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return data


def _write(out: Path, data: dict[str, Any]) -> None:
    (out / "memory.json").write_text(json.dumps(data, indent=1))
    (out / "memory.md").write_text(render_markdown(data))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys", type=int, default=1_000_000, help="keys to load / replay (default 1000000)")
    p.add_argument("--value-size", type=int, default=100, help="value size in bytes (default 100)")
    p.add_argument("--workers-list", default="1,2", help="kvred --workers values (default 1,2)")
    p.add_argument("--repeats", type=int, default=3, help="start-up timings per server (default 3)")
    p.add_argument("--out", type=Path, help="output directory (default bench/results/<timestamp>-memory)")
    p.add_argument("--tmpdir", type=Path, help="where the data directories go (default: system temp)")
    p.add_argument("--redis-server", default="redis-server", help="redis-server binary")
    p.add_argument("--skip-memory", action="store_true", help="only the start-up measurement")
    p.add_argument("--skip-startup", action="store_true", help="only the memory measurement")
    p.add_argument("--types", action="store_true", help="also memory per value type (list, hash, set, zset, "
                   "small hashes)")
    p.add_argument("--elements", type=int, default=1_000_000, help="elements per type with --types (default 1000000)")
    args = p.parse_args(argv)
    if args.keys < 1 or args.repeats < 1 or args.value_size < 1:
        p.error("--keys, --repeats and --value-size must be at least 1")
    workers = [int(x) for x in args.workers_list.split(",") if x.strip()]
    out = (args.out or BENCH_DIR / "results" / f"{benchlib.timestamp()}-memory").resolve()
    try:
        run_all(args.keys, workers, out, args.repeats, args.value_size, args.redis_server, args.tmpdir,
                log=lambda m: print(m, file=sys.stderr, flush=True), memory=not args.skip_memory,
                startup=not args.skip_startup, types_elements=args.elements if args.types else 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print((out / "memory.md").read_text())
    print(f"written: {out / 'memory.md'}, {out / 'memory.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
