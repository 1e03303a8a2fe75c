"""Publish/subscribe: who listens to what, and the messages (Redis's pubsub.c), sans-IO.

The writer owns one `PubSub`. Subscriptions are kept both ways, as Redis does: per
channel (or pattern) the clients that listen, in subscription order, and per client
what it listens to (for UNSUBSCRIBE without arguments, CLIENT LIST's sub=/psub=, and
dropping everything when it leaves). A message for a client is handed to `push`,
which the executor points at the link to the client's worker: delivery, ordering
with the client's replies and the output limit are the push channel's business
(kvred/writer.py, kvred/connection.py), not this module's.

Pattern matching uses the keyspace's bounded glob matcher (kvred/glob.py), so a
hostile pattern costs PUBLISH no more than it costs KEYS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .glob import compile_glob

__all__ = ["PubSub", "CHANNELS", "PATTERNS", "SHARD_CHANNELS", "subscription_count", "message_frame"]

# The three kinds of subscription: (client attribute, Redis's reply names)
CHANNELS, PATTERNS, SHARD_CHANNELS = "channels", "patterns", "shard_channels"


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(data), data)


def message_frame(resp3: bool, *parts: bytes) -> bytes:
    """A pub/sub frame: an array in RESP2, a push (`>`) in RESP3."""
    return b"%c%d\r\n%b" % (62 if resp3 else 42, len(parts), b"".join(map(_bulk, parts)))


def subscription_count(client: Any) -> int:
    """What (P)SUBSCRIBE and (P)UNSUBSCRIBE replies count: channels and patterns."""
    return len(client.channels) + len(client.patterns)


class PubSub:
    def __init__(self) -> None:
        # channel (or pattern) -> {client id: client}, in subscription order
        self.channels: dict[bytes, dict[int, Any]] = {}
        self.patterns: dict[bytes, dict[int, Any]] = {}
        self.shard_channels: dict[bytes, dict[int, Any]] = {}
        self.matchers: dict[bytes, Callable[[bytes], bool]] = {}  # pattern -> compiled (kvred/glob.py)
        # where messages go: push(client, frame). Set by the executor.
        self.push: Callable[[Any, bytes], None] = lambda client, frame: None

    def _registry(self, kind: str) -> dict[bytes, dict[int, Any]]:
        return self.channels if kind == CHANNELS else self.patterns if kind == PATTERNS else self.shard_channels

    def subscribe(self, client: Any, kind: str, name: bytes) -> bool:
        """True if `client` was not already subscribed to `name`."""
        mine: dict[bytes, None] = getattr(client, kind)
        if name in mine:
            return False
        mine[name] = None
        registry = self._registry(kind)
        if name not in registry:
            registry[name] = {}
            if kind == PATTERNS:
                self.matchers[name] = compile_glob(name).match
        registry[name][client.id] = client
        return True

    def unsubscribe(self, client: Any, kind: str, name: bytes) -> bool:
        """True if `client` was subscribed to `name`."""
        mine: dict[bytes, None] = getattr(client, kind)
        if name not in mine:
            return False
        del mine[name]
        registry = self._registry(kind)
        listeners = registry.get(name)
        if listeners is not None:
            listeners.pop(client.id, None)
            if not listeners:
                del registry[name]
                if kind == PATTERNS:
                    del self.matchers[name]
        return True

    def forget(self, client: Any) -> None:
        """The client left (or RESET): drop all its subscriptions."""
        for kind in (CHANNELS, PATTERNS, SHARD_CHANNELS):
            for name in list(getattr(client, kind)):
                self.unsubscribe(client, kind, name)

    def publish(self, channel: bytes, message: bytes) -> int:
        """PUBLISH: the message to every subscriber of `channel` and of each pattern
        matching it (one frame per matching pattern, as Redis); the receiver count."""
        receivers = 0
        push = self.push
        frames: dict[bool, bytes] = {}  # one encoding per protocol, shared by its clients
        listeners = self.channels.get(channel)
        if listeners:
            for client in list(listeners.values()):
                resp3 = client.resp == 3
                frame = frames.get(resp3)
                if frame is None:
                    frame = frames[resp3] = message_frame(resp3, b"message", channel, message)
                push(client, frame)
                receivers += 1
        if self.patterns:
            matchers = self.matchers
            for pattern, clients in list(self.patterns.items()):
                if not matchers[pattern](channel):
                    continue
                by_protocol: dict[bool, bytes] = {}
                for client in list(clients.values()):
                    resp3 = client.resp == 3
                    frame = by_protocol.get(resp3)
                    if frame is None:
                        frame = by_protocol[resp3] = message_frame(resp3, b"pmessage", pattern, channel, message)
                    push(client, frame)
                    receivers += 1
        return receivers

    def spublish(self, channel: bytes, message: bytes) -> int:
        """SPUBLISH: shard channels have no patterns."""
        listeners = self.shard_channels.get(channel)
        if not listeners:
            return 0
        frames: dict[bool, bytes] = {}
        for client in list(listeners.values()):
            resp3 = client.resp == 3
            frame = frames.get(resp3)
            if frame is None:
                frame = frames[resp3] = message_frame(resp3, b"smessage", channel, message)
            self.push(client, frame)
        return len(listeners)
