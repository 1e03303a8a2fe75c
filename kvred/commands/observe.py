"""SLOWLOG, LATENCY and LOLWUT: what the server tells about itself beyond INFO.

The data lives in the writer's executor (kvred/slowlog.py, kvred/stats.py);
these handlers only parse arguments and encode replies as Redis 7.0 does.
"""

from __future__ import annotations

import random
from typing import Any

from .. import resp
from ..lolwut import schotter, skyline
from ..stats import calls
from .base import ERR_NOT_INT, command, int_arg, subcommand_syntax_error

__all__: list[str] = []

REDIS_VERSION = "7.0.15"
ERR_SLOWLOG_COUNT = b"-ERR count should be greater than or equal to -1\r\n"
SLOWLOG_DEFAULT_COUNT = 10

_SLOWLOG_HELP = [
    b"SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"GET [<count>]",
    b"    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    b"    Entries are made of:",
    b"    id, timestamp, time in microseconds, arguments array, client IP and port,",
    b"    client name",
    b"LEN",
    b"    Return the length of the slowlog.",
    b"RESET",
    b"    Reset the slowlog.",
    b"HELP",
    b"    Prints this help.",
]

_LATENCY_HELP = [
    b"LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"DOCTOR",
    b"    Return a human readable latency analysis report.",
    b"GRAPH <event>",
    b"    Return an ASCII latency graph for the <event> class.",
    b"HISTORY <event>",
    b"    Return time-latency samples for the <event> class.",
    b"LATEST",
    b"    Return the latest latency samples for all events.",
    b"RESET [<event> ...]",
    b"    Reset latency data of one or more <event> classes.",
    b"    (default: reset all data for all event classes)",
    b"HISTOGRAM [COMMAND ...]",
    b"    Return a cumulative distribution of latencies in the format of a histogram for the specified command "
    b"names.",
    b"    If no commands are specified then all histograms are replied.",
    b"HELP",
    b"    Prints this help.",
]

# Redis's reply when no event was ever recorded (latencyCommandGenSparkeline's sibling
# createLatencyReport); kept word for word: tools match it
_DOCTOR_NOTHING = (
    b"Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. "
    b"I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n"
)

_DOCTOR_DISABLED = (
    b"I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use "
    b"\"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep "
    b"space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n"
)


def _help(lines: list[bytes]) -> bytes:
    return resp.array([resp.simple(line) for line in lines])


@command("slowlog", -2, "admin loading stale", subcommands={"get": -2, "len": 2, "reset": 2, "help": 2})
def slowlog(ctx: Any, argv: list[bytes]) -> bytes:
    sub = argv[1].lower()
    log = ctx.executor.slowlog
    if sub == b"help":
        return _help(_SLOWLOG_HELP)
    if sub == b"len":
        return resp.integer(len(log.entries))
    if sub == b"reset":
        log.reset()
        return resp.OK
    # GET [count]: at most one argument (the table's arity is only a minimum)
    if len(argv) > 3:
        return subcommand_syntax_error(argv[1], "slowlog")
    count = SLOWLOG_DEFAULT_COUNT
    if len(argv) == 3:
        value = int_arg(argv[2])
        if value is None or value < -1:
            return ERR_SLOWLOG_COUNT
        count = value
    return log.get(count)


@command("latency", -2, "admin noscript loading stale",
         subcommands={"doctor": 2, "graph": 3, "history": 3, "latest": 2, "reset": -2, "histogram": -2, "help": 2})
def latency(ctx: Any, argv: list[bytes]) -> bytes:
    sub = argv[1].lower()
    monitor = ctx.executor.latency
    if sub == b"help":
        return _help(_LATENCY_HELP)
    if sub == b"latest":
        return monitor.latest()
    if sub == b"history":
        return monitor.history(argv[2].decode(errors="replace"))
    if sub == b"reset":
        return resp.integer(monitor.reset([a.decode(errors="replace") for a in argv[2:]]))
    if sub == b"histogram":
        return _histogram(ctx, argv[2:])
    if sub == b"graph":
        event = argv[2].decode(errors="replace")
        samples = monitor.samples(event)
        if samples is None:
            return resp.error(f"ERR No samples available for event '{event}'")
        return resp.verbatim(_graph(event, samples).encode(), ctx.resp3)
    # doctor
    summary = monitor.summary()
    if not summary:
        report = _DOCTOR_DISABLED if not ctx.config.latency_monitor_threshold else _DOCTOR_NOTHING
    else:
        report = _doctor(summary).encode()
    return resp.verbatim(report, ctx.resp3)


def _map(pairs: list[tuple[bytes, bytes]], resp3: bool) -> bytes:
    head = b"%%%d\r\n" % len(pairs) if resp3 else b"*%d\r\n" % (2 * len(pairs))
    return head + b"".join(k + v for k, v in pairs)


def _histogram(ctx: Any, names: list[bytes]) -> bytes:
    """LATENCY HISTOGRAM [command ...]: each command that ran, with its calls and
    cumulative counts under power-of-two microsecond bounds."""
    stats = ctx.executor.stats
    if names:
        wanted = [n.decode(errors="replace").lower() for n in names]
        chosen = [(name, stats.commands[name]) for name in dict.fromkeys(wanted) if name in stats.commands]
    else:
        chosen = list(stats.commands.items())
    resp3 = ctx.resp3
    rows = []
    for name, stat in chosen:
        n = calls(stat)
        if not n:
            continue
        buckets = _map([(resp.integer(bound), resp.integer(count)) for bound, count in stats.histogram_usec(stat)],
                       resp3)
        body = _map([(resp.bulk(b"calls"), resp.integer(n)), (resp.bulk(b"histogram_usec"), buckets)], resp3)
        rows.append((resp.bulk(name.encode()), body))
    return _map(rows, resp3)


def _doctor(summary: dict[str, Any]) -> str:
    """A short report of each event's samples (Redis's own report is longer and gives advice)."""
    lines = ["Dave, I have observed latency spikes in this Redis instance. "
             "You don't mind talking about it, do you Dave?", ""]
    for i, (event, s) in enumerate(summary.items(), 1):
        lines.append(f"{i}. {event}: {s['count']} latency spikes (average {s['avg']:.0f}ms, "
                     f"mean deviation 0ms, period 0 sec). Worst all time event {s['all_time_max']}ms.")
    return "\n".join(lines) + "\n"


def _graph(event: str, samples: list[list[int]]) -> str:
    """One column per sample, as high as its latency relative to the largest (8 rows)."""
    top = max(ms for _ts, ms in samples) or 1
    low = min(ms for _ts, ms in samples)
    rows = []
    for level in range(8, 0, -1):
        rows.append("".join("#" if ms * 8 >= level * top else " " for _ts, ms in samples))
    return f"{event} - high {top} ms, low {low} ms (all time high {top} ms)\n" + "-" * 80 + "\n" + "\n".join(rows) + "\n"


_LOLWUT_RANDOM = random.Random()


@command("lolwut", -1, "readonly fast")
def lolwut(ctx: Any, argv: list[bytes]) -> bytes:
    """LOLWUT [VERSION v [args...]]: version 5 draws Schotter (LOLWUT VERSION 5 [columns
    [squares per row [squares per column]]]), 6 a skyline ([columns [rows]]), anything
    else (7.0 itself) the version line, as Redis 7.0 (kvred/lolwut.py)."""
    version = REDIS_VERSION
    args = argv[1:]
    if len(argv) >= 3 and argv[1].lower() == b"version":
        number = int_arg(argv[2])
        if number is None:
            return ERR_NOT_INT
        version = f"{number & 0xFFFFFFFF}.0.0"  # Redis prints it with %u
        args = argv[3:]
    if (version[:2] == "5." and version[2:3] != "9") or version.startswith("4.9"):
        sizes = _lolwut_sizes(args, [66, 8, 12], [1000, 200, 200])
        if isinstance(sizes, bytes):
            return sizes
        columns, per_row, per_column = sizes
        art = schotter(columns, per_row, per_column, _LOLWUT_RANDOM) + "\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. "
    elif (version[:2] == "6." and version[2:3] != "9") or version.startswith("5.9"):
        sizes = _lolwut_sizes(args, [80, 20], [1000, 1000])
        if isinstance(sizes, bytes):
            return sizes
        columns, rows = sizes
        art = skyline(columns, rows, _LOLWUT_RANDOM) + ("\nDedicated to the 8 bit game developers of past and present.\n"
                                                  "Original 8 bit image from Plaguemon by hikikomori. Redis ver. ")
    else:
        art = "Redis ver. "
    return resp.verbatim(f"{art}{REDIS_VERSION}\n".encode(), ctx.resp3)


def _lolwut_sizes(args: list[bytes], defaults: list[int], highest: list[int]) -> list[int] | bytes:
    """The optional sizes, each clamped to 1..its highest as Redis does (or Redis's error)."""
    sizes = list(defaults)
    for i, arg in enumerate(args[: len(defaults)]):
        value = int_arg(arg)
        if value is None:
            return ERR_NOT_INT
        sizes[i] = min(max(value, 1), highest[i])
    return sizes
