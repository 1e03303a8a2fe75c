#!/usr/bin/env python3
"""How well kvred's used_memory tracks what its dataset really takes (kvred/memory.py).

    python bench/memory_accounting.py --keys 100000 --elements 100000
    python bench/memory_accounting.py --keys 1000000 --loads strings

For each load (strings: --keys keys of --value-size bytes by MSET; list, hash, set,
zset, small-hashes: bench/memory.py's loads of --elements elements) a fresh kvred
(1 worker, AOF everysec) and a fresh redis-server (AOF everysec) are started empty and
loaded; after the writer's cron has priced the keys (1 s) it reports:

    kvred  writer RSS growth, RSS growth of all its processes, used_memory_dataset
           (the estimate maxmemory compares), and estimate / writer RSS growth
    redis  used_memory growth and RSS growth

The estimate is good when estimate / writer growth is near 1: a cache with
maxmemory M then grows by about M.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402
import psutil  # noqa: E402
from memory import TYPE_LOADS, _type_commands, info_field, load_commands, load_keys  # noqa: E402

SETTLE_S = 1.0  # the writer's cron prices keys every 100 ms; its average settles in a few ticks


def _writer_rss(port: int) -> int:
    pid = info_field(port, "server", "writer_process_id")
    assert pid is not None
    return int(psutil.Process(int(pid)).memory_info().rss)


def measure(load: str, keys: int, elements: int, value_size: int, root: Path) -> dict[str, float | str]:
    row: dict[str, float | str] = {"load": load}
    for kind in ("kvred", "redis"):
        workdir = root / f"{load}-{kind}"
        workdir.mkdir()
        server = (benchlib.kvred_server(workdir, 1, "everysec") if kind == "kvred"
                  else benchlib.redis_server(workdir, "everysec"))
        server.start(timeout=60)
        try:
            time.sleep(0.5)
            tree0 = benchlib.tree_memory(server)["rss_bytes"]
            if kind == "kvred":
                writer0 = _writer_rss(server.port)
            used0 = int(info_field(server.port, "memory", "used_memory") or 0)
            if load == "strings":
                load_keys(server.port, keys, value_size)
            else:
                load_commands(server.port, _type_commands(load, elements))
            time.sleep(SETTLE_S)
            tree1 = benchlib.tree_memory(server)["rss_bytes"]
            used1 = int(info_field(server.port, "memory", "used_memory") or 0)
            if kind == "kvred":
                writer1 = _writer_rss(server.port)
                dataset = int(info_field(server.port, "memory", "used_memory_dataset") or 0)
                row.update(kvred_writer_growth=writer1 - writer0, kvred_tree_growth=tree1 - tree0,
                           kvred_dataset=dataset, kvred_ratio=round(dataset / max(writer1 - writer0, 1), 3))
            else:
                row.update(redis_used_growth=used1 - used0, redis_rss_growth=tree1 - tree0)
        finally:
            server.stop()
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--elements", type=int, default=100_000)
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--loads", default="strings," + ",".join(TYPE_LOADS))
    args = parser.parse_args()
    mib = 2**20
    print("| load | kvred writer RSS growth | kvred all-process RSS growth | kvred used_memory_dataset "
          "| estimate / writer growth | redis used_memory growth | redis RSS growth |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="kvred-memacct-") as tmp:
        for load in args.loads.split(","):
            r = measure(load, args.keys, args.elements, args.value_size, Path(tmp))
            print(f"| {load} | {r['kvred_writer_growth'] / mib:.1f} MiB | {r['kvred_tree_growth'] / mib:.1f} MiB "
                  f"| {r['kvred_dataset'] / mib:.1f} MiB | {r['kvred_ratio']} | {r['redis_used_growth'] / mib:.1f} MiB "
                  f"| {r['redis_rss_growth'] / mib:.1f} MiB |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
