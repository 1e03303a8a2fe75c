"""Prometheus' redis_exporter (Debian's prometheus-redis-exporter) scrapes kvred as it
scrapes redis-server (issue 16): no scrape error, redis_up 1, and the same metric names,
except the ones listed below with the reason each must differ.

Each server gets the same traffic first (keys with and without TTL, an error, a few
commands) so that metrics that only exist once something happened exist on both.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ServerProcess, free_port, require_tool, start_kvred, start_redis
from rawclient import RawClient

SCRAPE_DEADLINE_S = 15.0

# Metrics the exporter makes from INFO fields kvred leaves out because it has nothing
# true to put there (tests/test_diff_observe.py REDIS_ONLY lists the fields).
REDIS_ONLY = {
    # jemalloc's and Lua's memory accounting: kvred is Python (its own figures: kvred/memory.py)
    "redis_allocator_active_bytes", "redis_allocator_allocated_bytes", "redis_allocator_frag_bytes",
    "redis_allocator_frag_ratio", "redis_allocator_resident_bytes", "redis_allocator_rss_bytes",
    "redis_allocator_rss_ratio", "redis_memory_used_lua_bytes", "redis_memory_used_scripts_bytes",
    "redis_number_of_cached_scripts",
    # active defragmentation, I/O threads: kvred has neither
    "redis_defrag_hits", "redis_defrag_key_hits", "redis_defrag_key_misses", "redis_defrag_misses",
    "redis_io_threaded_reads_processed", "redis_io_threaded_writes_processed",
    # RDB, fork copy-on-write sizes, modules: kvred has no RDB and no modules
    "redis_rdb_changes_since_last_save", "redis_rdb_last_cow_size_bytes", "redis_aof_last_cow_size_bytes",
    "redis_module_fork_in_progress", "redis_module_fork_last_cow_size",
    # replication, cluster migration, RESTORE payload checks, tracking prefixes: not in kvred
    "redis_slave_expires_tracked_keys", "redis_migrate_cached_sockets_total", "redis_dump_payload_sanitizations",
    "redis_tracking_total_items", "redis_tracking_total_prefixes",
    # errors kvred cannot tell apart from the others (Redis: replies to its master, a bug)
    "redis_unexpected_error_replies",
}
# kvred's AOF is on, the oracle's off: Redis shows these only with the AOF on
KVRED_ONLY = {
    "redis_aof_base_size_bytes", "redis_aof_buffer_length", "redis_aof_current_size_bytes",
    "redis_aof_delayed_fsync", "redis_aof_pending_bio_fsync", "redis_aof_pending_rewrite",
}


class Exporter:
    def __init__(self, server: ServerProcess, workdir: Path) -> None:
        exe = require_tool("prometheus-redis-exporter")
        self.port = free_port()
        self.log = open(workdir / f"exporter-{server.port}.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [exe, "-redis.addr", f"redis://127.0.0.1:{server.port}", "-web.listen-address", f"127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def scrape(self) -> str:
        """One scrape of /metrics, polled until the exporter listens."""
        deadline = time.monotonic() + SCRAPE_DEADLINE_S
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as reply:
                    return str(reply.read().decode())
            except OSError:
                assert self.proc.poll() is None, "the exporter exited"
                assert time.monotonic() < deadline, "the exporter did not answer"
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _traffic(server: ServerProcess) -> None:
    with RawClient(server.port) as client:
        for command in (("SET", "plain", "v"), ("SET", "ttl", "v", "EX", "1000"), ("LPUSH", "plain", "x"),
                        ("GET", "plain"), ("GET", "missing"), ("HSET", "h", "f", "v"), ("SUBSCRIBE", "c")):
            client.call(*command)


def _names(scrape: str) -> set[str]:
    return {line.split("{", 1)[0].split(" ", 1)[0] for line in scrape.splitlines() if line and line[0] != "#"}


@pytest.fixture(scope="module")
def scrapes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    require_tool("prometheus-redis-exporter")
    workdir = tmp_path_factory.mktemp("exporter")
    servers = {"redis": start_redis(tmp_path_factory.mktemp("redis")),
               "kvred": start_kvred(tmp_path_factory.mktemp("kvred"))}
    exporters: dict[str, Exporter] = {}
    try:
        for name, server in servers.items():
            _traffic(server)
            exporters[name] = Exporter(server, workdir)
        yield {name: exporter.scrape() for name, exporter in exporters.items()}
    finally:
        for exporter in exporters.values():
            exporter.stop()
        for server in servers.values():
            server.stop()


def test_kvred_scraped_without_errors(scrapes: dict[str, str]) -> None:
    lines = scrapes["kvred"].splitlines()
    assert 'redis_exporter_last_scrape_error{err=""} 0' in lines
    assert "redis_up 1" in lines
    assert not [line for line in lines if line.startswith("redis_exporter_scrape_error")]
    assert 'redis_exporter_last_scrape_error{err=""} 0' in scrapes["redis"].splitlines()  # the oracle too


def test_same_metric_names_as_redis(scrapes: dict[str, str]) -> None:
    redis, kvred = _names(scrapes["redis"]), _names(scrapes["kvred"])
    assert redis - kvred == REDIS_ONLY
    assert kvred - redis == KVRED_ONLY


def test_per_command_and_keyspace_metrics(scrapes: dict[str, str]) -> None:
    """commandstats, errorstats, latencystats and keyspace reach the exporter's labelled metrics."""
    kvred = scrapes["kvred"]
    for expected in ('redis_commands_total{cmd="set"}', 'redis_commands_total{cmd="get"}',
                     'redis_errors_total{err="WRONGTYPE"}', 'redis_commands_failed_calls_total{cmd="lpush"}',
                     'redis_db_keys{db="db0"}', 'redis_db_keys_expiring{db="db0"}',
                     'redis_latency_percentiles_usec{cmd="get",quantile="99.9"}'):
        assert expected in kvred, expected
