"""SLOWLOG (Redis's slowlog.c) and the latency monitor (latency.c), sans-IO.

Both are fed by the writer's executor with commands that ran at least as long
as the lowest of their thresholds; each reads its setting from the config at
the time it is fed (`slowlog-log-slower-than` µs, `slowlog-max-len`,
`latency-monitor-threshold` ms), so a runtime change applies to the next command.
Both are bounded: the slow log to slowlog-max-len entries, each with at most
32 arguments of at most 128 bytes; the latency monitor to 160 samples for each
of a fixed set of events.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from . import resp

__all__ = ["SlowLog", "LatencyMonitor", "SLOWLOG_ENTRY_MAX_ARGC", "SLOWLOG_ENTRY_MAX_STRING", "LATENCY_TS_LEN"]

SLOWLOG_ENTRY_MAX_ARGC = 32
SLOWLOG_ENTRY_MAX_STRING = 128  # bytes
LATENCY_TS_LEN = 160  # samples kept per event, one per second at most


def _slowlog_argv(argv: list[bytes]) -> list[bytes]:
    """The arguments as a slow log entry keeps them (Redis's slowlogCreateEntry)."""
    argc = len(argv)
    kept = min(argc, SLOWLOG_ENTRY_MAX_ARGC)
    out = []
    for j in range(kept):
        if kept != argc and j == kept - 1:
            out.append(b"... (%d more arguments)" % (argc - kept + 1))
            break
        arg = argv[j]
        if len(arg) > SLOWLOG_ENTRY_MAX_STRING:
            arg = arg[:SLOWLOG_ENTRY_MAX_STRING] + b"... (%d more bytes)" % (len(arg) - SLOWLOG_ENTRY_MAX_STRING)
        else:
            arg = bytes(arg)  # not a view of a request buffer
        out.append(arg)
    return out


class SlowLog:
    def __init__(self) -> None:
        self.entries: deque[tuple[int, int, int, list[bytes], bytes, bytes]] = deque()
        self.next_id = 0

    def add(self, argv: list[bytes], usec: int, addr: str, name: bytes, max_len: int) -> None:
        self.entries.appendleft((self.next_id, int(time.time()), usec, _slowlog_argv(argv), addr.encode(), name))
        self.next_id += 1
        self.trim(max_len)

    def trim(self, max_len: int) -> None:
        entries = self.entries
        while len(entries) > max(max_len, 0):
            entries.pop()

    def reset(self) -> None:
        self.entries.clear()

    def get(self, count: int) -> bytes:
        chosen = list(self.entries) if count < 0 else list(self.entries)[:count]
        return resp.array([
            resp.array([resp.integer(eid), resp.integer(ts), resp.integer(usec),
                        resp.array([resp.bulk(a) for a in argv]), resp.bulk(addr), resp.bulk(name)])
            for eid, ts, usec, argv, addr, name in chosen
        ])


class LatencyMonitor:
    """Events (`command`, `fast-command`, `aof-write`...) -> their latest 160 samples
    (unix time, ms), one per second (the worst of that second), and the all-time max."""

    def __init__(self) -> None:
        self.events: dict[str, tuple[deque[list[int]], list[int]]] = {}

    def add(self, event: str, ms: int, threshold_ms: int) -> None:
        """latencyAddSampleIfNeeded: only with the monitor on and at or over its threshold."""
        if not threshold_ms or ms < threshold_ms:
            return
        now = int(time.time())
        samples, peak = self.events.setdefault(event, (deque(maxlen=LATENCY_TS_LEN), [0]))
        if samples and samples[-1][0] == now:
            samples[-1][1] = max(samples[-1][1], ms)
        else:
            samples.append([now, ms])
        peak[0] = max(peak[0], ms)

    def reset(self, events: list[str]) -> int:
        if not events:
            count = len(self.events)
            self.events.clear()
            return count
        return sum(self.events.pop(name, None) is not None for name in dict.fromkeys(events))

    def latest(self) -> bytes:
        rows = []
        for name, (samples, peak) in self.events.items():
            if samples:
                ts, ms = samples[-1]
                rows.append(resp.array([resp.bulk(name.encode()), resp.integer(ts), resp.integer(ms),
                                        resp.integer(peak[0])]))
        return resp.array(rows)

    def history(self, event: str) -> bytes:
        found = self.events.get(event)
        samples = found[0] if found else ()
        return resp.array([resp.array([resp.integer(ts), resp.integer(ms)]) for ts, ms in samples])

    def samples(self, event: str) -> list[list[int]] | None:
        found = self.events.get(event)
        return list(found[0]) if found and found[0] else None

    def summary(self) -> dict[str, Any]:
        """Per event: samples, average, min, max, the all-time max (LATENCY DOCTOR)."""
        out: dict[str, Any] = {}
        for name, (samples, peak) in self.events.items():
            values = [ms for _ts, ms in samples]
            if values:
                out[name] = {"count": len(values), "avg": sum(values) / len(values), "min": min(values),
                             "max": max(values), "all_time_max": peak[0], "first": samples[0][0]}
        return out
