"""MEMORY (Redis's object.c memoryCommand): a key's size, the server's memory report,
the doctor, the allocator's statistics, giving memory back.

The figures come from the writer's estimate (kvred/memory.py: sys.getsizeof and the
allocator's rounding, elements sampled), not from an allocator that counts bytes as
Redis's does: the reply shapes and field names are Redis's, the values kvred's.
"""

from __future__ import annotations

from typing import Any

from .. import resp
from ..memory import MEMORY_USAGE_SAMPLES, key_memory
from .base import ERR_NOT_INT, ERR_SYNTAX, Context, command, int_arg

__all__: list[str] = []

SAMPLES_ALL = 0  # MEMORY USAGE ... SAMPLES 0: every element
DOCTOR_MIN_BYTES = 5 * 1024 * 1024  # below this the doctor has nothing to say (as Redis)
DOCTOR_PEAK_RATIO = 1.5  # the peak was this much above what is used now
DOCTOR_FRAGMENTATION_RATIO = 1.4  # RSS this much above what is used
_HELP = [
    b"MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"DOCTOR",
    b"    Return memory problems reports.",
    b"MALLOC-STATS",
    b"    Return internal statistics report from the memory allocator.",
    b"PURGE",
    b"    Attempt to purge dirty pages for reclamation by the allocator.",
    b"STATS",
    b"    Return information about the memory usage of the server.",
    b"USAGE <key> [SAMPLES <count>]",
    b"    Return memory in bytes used by <key> and its value. Nested values are",
    b"    sampled up to <count> times (default: 5, 0 means sample all).",
    b"HELP",
    b"    Prints this help.",
]


@command("memory", -2, "", subcommands={"usage": -3, "stats": 2, "doctor": 2, "malloc-stats": 2,
                                        "purge": 2, "help": 2})
def memory(ctx: Context, argv: list[bytes]) -> bytes:
    """(The command table checks the subcommand and its arity.)"""
    sub = argv[1].lower()
    if sub == b"usage":
        return _usage(ctx, argv)
    if sub == b"help":
        return resp.array([resp.simple(line) for line in _HELP])
    figures = ctx.server.memory_figures()
    if sub == b"stats":
        return _stats(ctx, figures)
    if sub == b"doctor":
        return resp.verbatim(_doctor(figures), ctx.resp3)
    if sub == b"malloc-stats":
        return resp.verbatim(ctx.server.malloc_stats(), ctx.resp3)
    ctx.server.purge_memory()  # purge
    return resp.OK


def _usage(ctx: Context, argv: list[bytes]) -> bytes:
    samples = MEMORY_USAGE_SAMPLES
    if len(argv) == 5 and argv[3].lower() == b"samples":
        number = int_arg(argv[4])
        if number is None:
            return ERR_NOT_INT
        if number < 0:
            return ERR_SYNTAX
        samples = number  # 0: all (value_memory's convention too)
    elif len(argv) != 3:
        return ERR_SYNTAX
    keyspace, key = ctx.keyspace, argv[2]
    value = keyspace.peek(key, miss_event=False)  # LOOKUP_NOTOUCH: not an access
    if value is None:
        return ctx.null
    return resp.integer(key_memory(key, value, key in keyspace.expires, samples, keyspace.track))


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _double(ctx: Context, value: float) -> bytes:
    return resp.double(b"%.17g" % value, ctx.resp3)


def _stats(ctx: Context, f: dict[str, Any]) -> bytes:
    """Redis's MEMORY STATS map: its fields in its order (a db.N map per non-empty database)."""
    used, startup, dataset, rss = f["used_memory"], f["used_memory_startup"], f["used_memory_dataset"], f["rss"]
    keys = sum(len(db.data) for db in ctx.databases.dbs)
    overhead = used - dataset
    fields: list[tuple[bytes, bytes]] = [
        (b"peak.allocated", resp.integer(f["used_memory_peak"])),
        (b"total.allocated", resp.integer(used)),
        (b"startup.allocated", resp.integer(startup)),
        (b"replication.backlog", resp.integer(0)),
        (b"clients.slaves", resp.integer(0)),
        (b"clients.normal", resp.integer(f["clients_normal"])),
        (b"cluster.links", resp.integer(0)),
        (b"aof.buffer", resp.integer(f["aof_buffer"])),
        (b"lua.caches", resp.integer(0)),
        (b"functions.caches", resp.integer(0)),
    ]
    for db in ctx.databases.dbs:
        if db.data or db.expires:
            per_db = [(b"overhead.hashtable.main", resp.integer(f["entry_bytes"] * len(db.data))),
                      (b"overhead.hashtable.expires", resp.integer(f["entry_bytes"] * len(db.expires))),
                      (b"overhead.hashtable.slot-to-keys", resp.integer(0))]
            fields.append((b"db.%d" % db.id, _map(ctx, per_db)))
    fields += [
        (b"overhead.total", resp.integer(overhead)),
        (b"keys.count", resp.integer(keys)),
        (b"keys.bytes-per-key", resp.integer((used - startup) // keys if keys else 0)),
        (b"dataset.bytes", resp.integer(dataset)),
        (b"dataset.percentage", _double(ctx, 100.0 * _ratio(dataset, used - startup))),
        (b"peak.percentage", _double(ctx, 100.0 * _ratio(used, f["used_memory_peak"]))),
        # no allocator that counts for kvred: what it allocated is its estimate, and the
        # resident memory the writer's RSS
        (b"allocator.allocated", resp.integer(used)),
        (b"allocator.active", resp.integer(used)),
        (b"allocator.resident", resp.integer(rss)),
        (b"allocator-fragmentation.ratio", _double(ctx, 1.0)),
        (b"allocator-fragmentation.bytes", resp.integer(0)),
        (b"allocator-rss.ratio", _double(ctx, _ratio(rss, used))),
        (b"allocator-rss.bytes", resp.integer(rss - used)),
        (b"rss-overhead.ratio", _double(ctx, 1.0)),
        (b"rss-overhead.bytes", resp.integer(0)),
        (b"fragmentation", _double(ctx, _ratio(rss, used))),
        (b"fragmentation.bytes", resp.integer(rss - used)),
    ]
    return _map(ctx, fields)


def _map(ctx: Context, fields: list[tuple[bytes, bytes]]) -> bytes:
    head = b"%%%d\r\n" % len(fields) if ctx.resp3 else b"*%d\r\n" % (2 * len(fields))
    return head + b"".join(resp.bulk(name) + value for name, value in fields)


def _doctor(f: dict[str, Any]) -> bytes:
    """kvred's own report, in the spirit of Redis's: the problems it can see."""
    used, peak, rss = f["used_memory"], f["used_memory_peak"], f["rss"]
    if used - f["used_memory_startup"] < DOCTOR_MIN_BYTES and rss < used + DOCTOR_MIN_BYTES:
        return (b"The dataset is too small (under 5 MB above start-up) for a memory report to mean anything: "
                b"come back with some data.\n")
    problems = []
    if peak > used * DOCTOR_PEAK_RATIO:
        problems.append(b"* Peak memory: the dataset once took %d bytes, %.2f times what it takes now. What "
                        b"was freed since is kept by the allocator for reuse; MEMORY PURGE may return some of "
                        b"it to the system.\n" % (peak, peak / used))
    if rss > used * DOCTOR_FRAGMENTATION_RATIO:
        problems.append(b"* High RSS overhead: the writer's resident memory is %.2f times the estimated "
                        b"dataset and start-up footprint (%d bytes more). This is fragmentation, memory freed "
                        b"but not returned, or an estimate too low for this kind of value.\n"
                        % (rss / used, rss - used))
    maxmemory = f["maxmemory"]
    if maxmemory and used - f["used_memory_startup"] > maxmemory:
        problems.append(b"* Over maxmemory: the dataset passes maxmemory (%d bytes); with the noeviction "
                        b"policy writes are refused.\n" % maxmemory)
    if not problems:
        return b"No memory problem found: the estimate, its peak and the resident memory agree.\n"
    return b"Memory problems found:\n\n" + b"".join(problems)
