"""Per-command statistics for INFO commandstats / errorstats / latencystats and
LATENCY HISTOGRAM (Redis's `redisCommand` counters and its per-command HDR
histograms), sans-IO.

One flat list per command (`CommandStat`), so that the writer's hot loop pays
two list-item additions per command and nothing else:

    stat[NS]        total nanoseconds spent in the handler
    stat[FAILED]    calls that ran and answered an error
    stat[REJECTED]  calls refused before running (arity, MISCONF...)
    stat[16:]       a log-linear histogram of durations in ns: bucket
                    (b << 2) | s for a duration whose top bit is bit b-1 and
                    whose next two bits are s. Four buckets per octave (at most
                    19% wide) over 64 octaves: bounded memory, as Redis's HDR
                    histogram. The number of calls is the histogram's sum.

`bucket_of(ns)` is the index; the hot loop inlines the same arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CommandStats", "new_stat", "calls", "percentile_ns", "bucket_of", "bucket_upper_ns", "NS", "FAILED", "REJECTED", "HIST_FIRST", "STAT_LEN"]

NS, FAILED, REJECTED = 0, 1, 2
HIST_FIRST = 16  # (8 | ns).bit_length() >= 4, so the first bucket index is 4 << 2
STAT_LEN = (65 << 2) + 4  # up to bit_length 64 (a duration of centuries)

CommandStat = list[int]
MAX_ERROR_CODES = 128  # Redis's ERROR_STATS_NUMBER


def bucket_of(ns: int) -> int:
    b = (ns | 8).bit_length()  # durations under 8 ns share the first octave's buckets
    return (b << 2) | ((ns >> (b - 3)) & 3)


def bucket_upper_ns(index: int) -> int:
    """The highest duration that falls in bucket `index`."""
    b, s = index >> 2, index & 3
    return (1 << (b - 1)) + ((s + 1) << (b - 3)) - 1


def new_stat() -> CommandStat:
    return [0] * STAT_LEN


def calls(stat: CommandStat) -> int:
    return sum(stat[HIST_FIRST:])


def percentile_ns(stat: CommandStat, percent: float) -> int:
    """The duration at or under which `percent` % of the calls ran (bucket upper bound)."""
    total = calls(stat)
    wanted = max(1, -(-total * percent // 100))  # ceil, at least the first call
    seen = 0
    for index in range(HIST_FIRST, STAT_LEN):
        seen += stat[index]
        if seen >= wanted:
            return bucket_upper_ns(index)
    return 0


class CommandStats:
    """Every command's counters, by Redis's full name (`get`, `config|get`), and the error counts."""

    def __init__(self) -> None:
        self.commands: dict[str, CommandStat] = {}
        self.errors: dict[str, int] = {}  # errorstats: the error's first word -> count
        self.total_errors = 0

    def stat_for(self, name: str) -> CommandStat:
        stat = self.commands.get(name)
        if stat is None:
            stat = self.commands[name] = new_stat()
        return stat

    def record(self, stat: CommandStat, ns: int) -> None:
        stat[NS] += ns
        stat[bucket_of(ns)] += 1

    def count_error(self, reply: bytes) -> None:
        """An error reply went out: errorstats counts it by its code (its first word)."""
        code = reply[1:].split(b" ", 1)[0].split(b"\r", 1)[0]
        name = code.decode(errors="replace")
        self.total_errors += 1
        if name in self.errors:
            self.errors[name] += 1
        elif len(self.errors) < MAX_ERROR_CODES:  # bounded: a client may invent codes (DEBUG ERROR, scripts)
            self.errors[name] = 1

    def merge(self, commands: dict[str, dict[int, int]], errors: dict[str, int]) -> None:
        """Counts a worker made (the commands it answers or rejects itself): command ->
        {stat index: count}, error code -> count."""
        for name, counts in commands.items():
            stat = self.stat_for(name)
            for index, count in counts.items():
                if 0 <= index < STAT_LEN:
                    stat[index] += count
        for code, count in errors.items():
            self.total_errors += count
            if code in self.errors:
                self.errors[code] += count
            elif len(self.errors) < MAX_ERROR_CODES:
                self.errors[code] = count

    def reset(self) -> None:
        """CONFIG RESETSTAT: every counter to zero, in place (the command table holds the lists)."""
        for stat in self.commands.values():
            stat[:] = new_stat()
        self.errors.clear()
        self.total_errors = 0

    def used(self) -> Iterable[tuple[str, CommandStat]]:
        """Commands that were called, rejected or failed, in table order."""
        # a call takes at least one ns (a Python call is ~50), so calls > 0 means NS > 0:
        # no scan of ~400 histograms per INFO
        return ((name, stat) for name, stat in self.commands.items() if stat[NS] or stat[FAILED] or stat[REJECTED])

    def commandstats(self) -> dict[str, object]:
        rows: dict[str, object] = {}
        for name, stat in self.used():
            n = calls(stat)
            usec = stat[NS] // 1000
            per_call = usec / n if n else 0.0
            rows[f"cmdstat_{name}"] = (f"calls={n},usec={usec},usec_per_call={per_call:.2f},"
                                       f"rejected_calls={stat[REJECTED]},failed_calls={stat[FAILED]}")
        return rows

    def errorstats(self) -> dict[str, object]:
        # sorted by code, as Redis keeps them (a radix tree)
        return {f"errorstat_{code}": f"count={count}" for code, count in sorted(self.errors.items())}

    def latencystats(self, percentiles: list[float]) -> dict[str, object]:
        rows: dict[str, object] = {}
        for name, stat in self.used():
            if not calls(stat):
                continue
            parts = [f"p{_fmt_percent(p)}={percentile_ns(stat, p) / 1000:.3f}" for p in percentiles]
            rows[f"latency_percentiles_usec_{name}"] = ",".join(parts)
        return rows

    def histogram_usec(self, stat: CommandStat) -> list[tuple[int, int]]:
        """LATENCY HISTOGRAM: cumulative counts under power-of-two microsecond bounds
        (1, 2, 4, ...), up to the bound that holds every call."""
        out = []
        total = calls(stat)
        bound_usec = 1
        seen = 0
        index = HIST_FIRST
        while seen < total:
            limit_ns = bound_usec * 1000
            while index < STAT_LEN and bucket_upper_ns(index) < limit_ns:
                seen += stat[index]
                index += 1
            if seen:
                out.append((bound_usec, seen))
            bound_usec <<= 1
            if bound_usec > 1 << 40:
                break
        return out


def _fmt_percent(p: float) -> str:
    """Redis prints 50, 99, 99.9 with %f trimmed of trailing zeros."""
    text = f"{p:f}".rstrip("0").rstrip(".")
    return text
