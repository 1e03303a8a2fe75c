"""Client-side caching: CLIENT TRACKING's invalidation messages (Redis's tracking.c),
sans-IO.

A tracking client is told when a key it may have cached changes:
- default mode: the keys of each read-only command it runs are remembered (with OPTIN
  only after CLIENT CACHING yes, with OPTOUT unless CLIENT CACHING no); the first
  change of such a key sends `invalidate [key]` and forgets it (one message per read);
- BCAST: every change of a key under one of its PREFIXes (all keys without one) is
  sent, the keys changed since the writer last looked gathered in one message, as
  Redis sends them from beforeSleep.
Messages go as RESP3 pushes to the client, or, with REDIRECT, to another client:
a RESP3 one, or a RESP2 one subscribed to `__redis__:invalidate`. NOLOOP leaves out
the client's own changes. A FLUSHDB/FLUSHALL sends a null invalidation to everyone.

The executor (kvred/execute.py) calls `read` after a tracking client's read-only
command, `changed` with the keys of every write command (and of each key expiry), and
`flush_broadcasts` before the writer commits a pass. Like Redis, the tracking table
knows key names, not databases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["Tracking", "TrackingState", "INVALIDATE_CHANNEL"]

INVALIDATE_CHANNEL = b"__redis__:invalidate"


class TrackingState:
    """One client's CLIENT TRACKING options."""

    __slots__ = ("bcast", "optin", "optout", "noloop", "redirect", "prefixes", "caching", "broken")

    def __init__(self) -> None:
        self.bcast = False
        self.optin = False
        self.optout = False
        self.noloop = False
        self.redirect = 0  # client id, 0: none
        self.prefixes: list[bytes] = []
        self.caching: bool | None = None  # CLIENT CACHING yes/no, for the next command
        self.broken = False  # a message found the redirect client gone


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(data), data)


class Tracking:
    def __init__(self, clients: Callable[[int], Any], push: Callable[[Any, bytes], None]) -> None:
        self.client_by_id = clients  # id -> WriterClient or None
        self.push = push  # push(client, frame)
        self.clients: dict[int, Any] = {}  # with tracking on (none: the executor skips all of this)
        self.table: dict[bytes, set[int]] = {}  # key -> ids of clients that read it
        # BCAST: prefix -> {client id: client}; keys changed since the last flush, by whom
        self.prefixes: dict[bytes, dict[int, Any]] = {}
        self.pending: list[tuple[bytes, int]] = []

    # ---------------------------------------------------------------- on/off

    def enable(self, client: Any, state: TrackingState) -> None:
        if client.tracking is not None:
            self._drop_prefixes(client)
        client.tracking = state
        self.clients[client.id] = client
        if state.bcast:
            for prefix in state.prefixes or [b""]:
                self.prefixes.setdefault(prefix, {})[client.id] = client

    def disable(self, client: Any) -> None:
        if client.tracking is None:
            return
        self._drop_prefixes(client)
        client.tracking = None
        del self.clients[client.id]  # its ids in `table` are skipped when met

    def _drop_prefixes(self, client: Any) -> None:
        state = client.tracking
        if state.bcast:
            for prefix in state.prefixes or [b""]:
                clients = self.prefixes.get(prefix)
                if clients is not None:
                    clients.pop(client.id, None)
                    if not clients:
                        del self.prefixes[prefix]

    # ---------------------------------------------------------------- events

    def read(self, client: Any, keys: Iterable[bytes]) -> None:
        """A tracking client ran a read-only command on `keys`."""
        state = client.tracking
        if state.bcast or (state.optin and state.caching is not True) or (state.optout and state.caching is False):
            return
        table = self.table
        for key in keys:
            readers = table.get(key)
            if readers is None:
                table[key] = {client.id}
            else:
                readers.add(client.id)

    def changed(self, keys: Iterable[bytes], by: Any) -> bytes:
        """`keys` were changed by client `by` (None: the server, e.g. expiry). Returns the
        messages for `by` itself, which go after its command's reply (as Redis 7 sends
        a client's own invalidations once its reply is written)."""
        by_id = by.id if by is not None else 0
        own: list[bytes] = []
        table = self.table
        for key in keys:
            if self.prefixes:
                self.pending.append((key, by_id))
            readers = table.pop(key, None)
            if not readers:
                continue
            for client_id in readers:
                client = self.client_by_id(client_id)
                if client is None or client.tracking is None or client.tracking.bcast:
                    continue
                if client.tracking.noloop and client_id == by_id:
                    continue
                self._send(client, b"*1\r\n" + _bulk(key), own if client_id == by_id else None, by)
        return b"".join(own)

    def flushed(self, by: Any) -> bytes:
        """FLUSHDB/FLUSHALL by client `by`: every tracking client gets a null invalidation
        (those for `by` are returned, to go after its reply)."""
        self.table.clear()
        self.pending.clear()
        own: list[bytes] = []
        for client in list(self.clients.values()):
            self._send(client, None, own, by)
        return b"".join(own)

    def flush_broadcasts(self) -> None:
        """BCAST: one message per client with the keys changed under its prefixes."""
        pending, self.pending = self.pending, []
        if not pending:
            return
        for prefix, clients in list(self.prefixes.items()):
            for client in list(clients.values()):
                noloop = client.tracking is not None and client.tracking.noloop
                keys = [key for key, by_id in pending if key.startswith(prefix) and not (noloop and by_id == client.id)]
                if keys:
                    self._send(client, b"*%d\r\n" % len(keys) + b"".join(map(_bulk, keys)))

    # ---------------------------------------------------------------- messages

    def _send(self, client: Any, keys: bytes | None, own: list[bytes] | None = None, by: Any = None) -> None:
        """Redis's sendTrackingMessage: to the client (RESP3) or to its redirect. A message
        for `by`, the client whose command caused it, goes to `own` (after its reply)."""
        push = self.push
        if own is not None:
            def push(target: Any, frame: bytes) -> None:
                if target is by:
                    own.append(frame)
                else:
                    self.push(target, frame)
        target = client
        redirect = client.tracking.redirect if client.tracking is not None else 0
        if redirect:
            target = self.client_by_id(redirect)
            if target is None:
                if client.tracking is not None:
                    client.tracking.broken = True  # (TRACKINGINFO's broken_redirect from now on)
                if client.resp == 3:  # the redirect target left: said with every message lost
                    push(client, b">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n" % redirect)
                return
        if target.resp == 3:
            body = keys if keys is not None else b"_\r\n"
            push(target, b">2\r\n$10\r\ninvalidate\r\n" + body)
        elif redirect and INVALIDATE_CHANNEL in target.channels:
            body = keys if keys is not None else b"$-1\r\n"
            push(target, b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n" + body)
