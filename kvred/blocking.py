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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clients import WriterClient
    from .keyspace import Keyspace

__all__ = ["BlockOn", "Blocked", "BlockedClients", "parse_timeout", "ERR_UNBLOCKED"]

ERR_TIMEOUT_NOT_FLOAT = b"-ERR timeout is not a float or out of range\r\n"
ERR_TIMEOUT_NEGATIVE = b"-ERR timeout is negative\r\n"
ERR_TIMEOUT_RANGE = b"-ERR timeout is out of range\r\n"
ERR_UNBLOCKED = b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
_LLONG_MAX = 2**63 - 1


def parse_timeout(arg: bytes) -> float | bytes:
    """A blocking command's timeout in seconds (float, 0 = forever), or Redis's error.
    Redis reads it as a long double and keeps whole milliseconds."""
    try:
        text = arg.decode("ascii")
        if text != text.strip() or not text:
            raise ValueError
        seconds = float(text)
    except (UnicodeDecodeError, ValueError):
        return ERR_TIMEOUT_NOT_FLOAT
    if math.isnan(seconds):
        return ERR_TIMEOUT_NOT_FLOAT
    if seconds < 0:
        return ERR_TIMEOUT_NEGATIVE
    milliseconds = seconds * 1000
    if milliseconds > _LLONG_MAX:
        return ERR_TIMEOUT_RANGE
    return int(milliseconds) / 1000


class BlockOn(Exception):
    """Raised by a blocking command's handler when it has nothing to serve: wait for
    one of `keys` (in the client's database) for `timeout` seconds (0: forever); on
    timeout the client gets `timeout_reply`."""

    def __init__(self, keys: list[bytes], timeout: float, timeout_reply: bytes) -> None:
        super().__init__()
        self.keys = keys
        self.timeout = timeout
        self.timeout_reply = timeout_reply


class Blocked:
    """A waiting client: what it waits for, and what of its entry is done and left."""

    __slots__ = ("keyspace", "keys", "argv", "deadline", "timeout_reply", "parts", "rest")

    def __init__(self, keyspace: Keyspace, keys: list[bytes], argv: list[bytes], deadline: float,
                 timeout_reply: bytes, parts: list[bytes], rest: list[list[bytes]]) -> None:
        self.keyspace = keyspace
        self.keys = keys
        self.argv = argv  # the blocking command, re-run when a key is ready
        self.deadline = deadline  # time.monotonic(); math.inf: no timeout
        self.timeout_reply = timeout_reply
        self.parts = parts  # replies of the entry's commands before it (and pushes to it)
        self.rest = rest  # the entry's commands after it: they run once it is served


class BlockedClients:
    """Who waits, and until when."""

    def __init__(self) -> None:
        self.count = 0  # INFO clients: blocked_clients
        self._deadlines: list[tuple[float, int, WriterClient, Blocked]] = []
        self._seq = 0

    def block(self, client: WriterClient, blocked: Blocked) -> None:
        client.blocked = blocked
        self.count += 1
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
        blocking = blocked.keyspace.blocking
        for key in blocked.keys:
            waiting = blocking.get(key)
            if waiting is not None:
                waiting.pop(client.id, None)
                if not waiting:
                    del blocking[key]
        return blocked

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
