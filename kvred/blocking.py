"""Blocking commands: clients that wait for a key (Redis's blocked.c), sans-IO.

A blocking command (BLPOP, BZPOPMIN, BLMOVE...) that finds nothing to serve raises
`BlockOn`; the executor (kvred/execute.py) then parks the client: a `Blocked` record
on the client, the client registered under each key in `Keyspace.blocking` (first
come, first served), and its deadline in `BlockedClients`. The client's commands
that came after the blocking one (the rest of its pipeline) wait behind it.

A key becomes *ready* when it is created while clients wait on it
(`Keyspace.set_key`, Redis's signalKeyAsReady); after the command that created it,
the executor re-runs each waiting client's command in arrival order while the key
exists (Redis 7 also re-processes the command): a push of N elements serves up to N
poppers, and a client whose command cannot use the key keeps waiting. A served
command logs what it popped or moved, as its non-blocking form.

Inside MULTI/EXEC and scripts commands never block: they answer as on a timeout.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clients import WriterClient
    from .keyspace import Keyspace

__all__ = ["BlockOn", "Blocked", "BlockedClients", "parse_timeout", "ERR_UNBLOCKED"]

ERR_TIMEOUT_NOT_FLOAT = b"-ERR timeout is not a float or out of range\r\n"
ERR_TIMEOUT_NEGATIVE = b"-ERR timeout is negative\r\n"
ERR_UNBLOCKED = b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"


def parse_timeout(arg: bytes) -> float | bytes:
    """A blocking command's timeout in seconds (0 = forever), or Redis 7.0's error.

    Redis reads it with strtold (decimal or hex, `inf`), multiplies by 1000 in long
    double and casts to a long long: a value past the range casts to LLONG_MIN and is
    "negative", and a tiny negative one truncates to 0 (forever). That arithmetic is
    reproduced exactly with fractions rounded to a 64-bit significand."""
    try:
        text = arg.decode("ascii")
    except UnicodeDecodeError:
        return ERR_TIMEOUT_NOT_FLOAT
    if not text or text[0].isspace() or text != text.strip() or len(text) > 5000:
        return ERR_TIMEOUT_NOT_FLOAT
    value = _strtold(text)
    if value is None:
        return ERR_TIMEOUT_NOT_FLOAT
    if isinstance(value, float):  # inf: the cast gives LLONG_MIN
        return ERR_TIMEOUT_NEGATIVE
    milliseconds = _long_double(value * 1000)
    if not -(2**63) <= milliseconds < 2**63:
        return ERR_TIMEOUT_NEGATIVE
    whole = int(milliseconds)  # truncation toward zero, as the C cast
    if whole < 0:
        return ERR_TIMEOUT_NEGATIVE
    return whole / 1000


def _strtold(text: str) -> Fraction | float | None:
    """strtold of the whole text: a Fraction (the long double it reads), inf, or None."""
    body = text.lstrip("+-")
    lowered = body.lower()
    if lowered in ("inf", "infinity"):
        return math.inf
    if lowered.startswith("nan") or not body:
        return None
    try:
        if lowered.startswith("0x"):
            exact = Fraction(float.fromhex(text))
        else:
            if not _DECIMAL.fullmatch(text):
                return None
            rough = float(text)
            if abs(rough) >= 1e20:  # far past 2**63 ms: no need to be exact (nor slow)
                return math.inf
            if rough == 0:
                return Fraction(0)  # zero, or too small to be a millisecond
            exact = Fraction(text)
    except (ValueError, OverflowError, ZeroDivisionError):
        return None
    return _long_double(exact)


_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _long_double(value: Fraction) -> Fraction:
    """`value` rounded to x87's long double (64-bit significand, half to even)."""
    if value == 0:
        return Fraction(0)
    sign = -1 if value < 0 else 1
    magnitude = abs(value)
    exponent = magnitude.numerator.bit_length() - magnitude.denominator.bit_length() - 64
    while magnitude / Fraction(2) ** exponent >= 2**64:
        exponent += 1
    while magnitude / Fraction(2) ** exponent < 2**63:
        exponent -= 1
    significand = round(magnitude / Fraction(2) ** exponent)  # round() of a Fraction: half to even
    return sign * significand * Fraction(2) ** exponent


class BlockOn(Exception):
    """Raised by a blocking command's handler when it has nothing to serve: wait for
    one of `keys` (in the client's database) to hold a value of one of `types`, for
    `timeout` seconds (0: forever); on timeout the client gets `timeout_reply`. When a
    key is ready the command is re-run as `retry(key)` (the command on that key alone,
    so a client waiting on several keys is served from the one that became ready).
    With `gone_reply` (XREADGROUP), a key that is deleted or stops holding one of `types`
    ends the wait with that reply (Redis 7.0's unblock_on_nokey)."""

    def __init__(self, keys: list[bytes], timeout: float, timeout_reply: bytes, types: tuple[type, ...],
                 retry: Callable[[bytes], list[bytes]] | None, gone_reply: bytes | None = None) -> None:
        super().__init__()
        self.keys = keys
        self.timeout = timeout
        self.timeout_reply = timeout_reply
        self.types = types
        self.retry = retry
        self.gone_reply = gone_reply


class Blocked:
    """A waiting client: what it waits for, and what of its entry is done and left."""

    __slots__ = ("keyspace", "keys", "argv", "deadline", "timeout_reply", "types", "retry", "gone_reply",
                 "parts", "rest")

    def __init__(self, keyspace: Keyspace, argv: list[bytes], deadline: float, block: BlockOn,
                 parts: list[bytes], rest: list[list[bytes]]) -> None:
        self.keyspace = keyspace
        self.keys = block.keys
        self.argv = argv  # the blocking command
        self.deadline = deadline  # time.monotonic(); math.inf: no timeout
        self.timeout_reply = block.timeout_reply
        self.types = block.types  # the value types it can use
        self.retry = block.retry  # key -> the command to re-run on that key
        self.gone_reply = block.gone_reply  # the reply when a key it waits on goes away
        self.parts = parts  # replies of the entry's commands before it (and pushes to it)
        self.rest = rest  # the entry's commands after it: they run once it is served


class BlockedClients:
    """Who waits, and until when."""

    def __init__(self) -> None:
        self.count = 0  # INFO clients: blocked_clients
        self.count_on_nokey = 0  # of them, those a deleted key unblocks (XREADGROUP)
        self._deadlines: list[tuple[float, int, WriterClient, Blocked]] = []
        self._seq = 0

    def block(self, client: WriterClient, blocked: Blocked) -> None:
        client.blocked = blocked
        self.count += 1
        if blocked.gone_reply is not None:
            self.count_on_nokey += 1
        for key in blocked.keys:
            waiting = blocked.keyspace.blocking.get(key)
            if waiting is None:
                waiting = blocked.keyspace.blocking[key] = {}
            waiting[client.id] = client
        if blocked.deadline != math.inf:
            self._seq += 1
            heapq.heappush(self._deadlines, (blocked.deadline, self._seq, client, blocked))

    def unblock(self, client: WriterClient) -> Blocked | None:
        """Forget that `client` waits (served, timed out, unblocked or gone)."""
        blocked = client.blocked
        if blocked is None:
            return None
        client.blocked = None
        self.count -= 1
        if blocked.gone_reply is not None:
            self.count_on_nokey -= 1
        blocking = blocked.keyspace.blocking
        for key in blocked.keys:
            waiting = blocking.get(key)
            if waiting is not None:
                waiting.pop(client.id, None)
                if not waiting:
                    del blocking[key]
        return blocked

    def count_with_timeout(self) -> int:
        """INFO clients_in_timeout_table: blocked clients that have a deadline."""
        return sum(1 for _d, _s, client, blocked in self._deadlines if client.blocked is blocked)

    def next_deadline(self) -> float:
        """The earliest deadline of a client still waiting (math.inf: none)."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][2].blocked is not deadlines[0][3]:
            heapq.heappop(deadlines)  # served or gone since: stale
        return deadlines[0][0] if deadlines else math.inf

    def timed_out(self, now: float) -> list[WriterClient]:
        """The clients whose deadline passed, earliest first (still registered)."""
        out = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _deadline, _seq, client, blocked = heapq.heappop(deadlines)
            if client.blocked is blocked:
                out.append(client)
        return out

    def waiting_on(self, keyspace: Keyspace, key: bytes) -> Any:
        """The clients waiting on `key`, in arrival order (a live dict view)."""
        return keyspace.blocking.get(key)
