"""Publish/subscribe commands (Redis's pubsub.c): SUBSCRIBE and friends, PUBLISH,
SPUBLISH, PUBSUB. The registry and the message frames are kvred/pubsub.py.

A worker mirrors each client's (un)subscriptions to enforce RESP2's subscribed mode
before a command reaches the writer (kvred/connection.py); the counts in the replies
come from here, the writer's real subscriptions.
"""

from __future__ import annotations

from .. import resp
from ..glob import compile_glob
from ..pubsub import CHANNELS, PATTERNS, SHARD_CHANNELS, subscription_count
from .base import Context, command, subcommand_syntax_error, unknown_subcommand

__all__ = ["SUBSCRIPTION_COMMANDS"]

# what a worker must see to follow its clients' subscriptions (not sent on its fast path)
SUBSCRIPTION_COMMANDS = ("subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe")

# (subscribe reply name, unsubscribe reply name) per kind
_NAMES = {
    CHANNELS: (b"subscribe", b"unsubscribe"),
    PATTERNS: (b"psubscribe", b"punsubscribe"),
    SHARD_CHANNELS: (b"ssubscribe", b"sunsubscribe"),
}


def _count(ctx: Context, kind: str) -> bytes:
    client = ctx.client
    count = len(client.shard_channels) if kind == SHARD_CHANNELS else subscription_count(client)
    return b":%d\r\n" % count


def _frame(ctx: Context, name: bytes, channel: bytes | None, kind: str) -> bytes:
    """One (un)subscribe confirmation: [kind, channel, count] (a push in RESP3)."""
    head = b"%c3\r\n" % (62 if ctx.resp3 else 42)
    return head + resp.bulk(name) + (resp.bulk(channel) if channel is not None else ctx.null) + _count(ctx, kind)


def _subscribe(ctx: Context, argv: list[bytes], kind: str) -> bytes:
    pubsub = ctx.executor.pubsub
    name = _NAMES[kind][0]
    out = []
    for channel in argv[1:]:
        pubsub.subscribe(ctx.client, kind, channel)
        out.append(_frame(ctx, name, channel, kind))
    return b"".join(out)


def _unsubscribe(ctx: Context, argv: list[bytes], kind: str) -> bytes:
    pubsub = ctx.executor.pubsub
    client = ctx.client
    name = _NAMES[kind][1]
    channels = argv[1:] or list(getattr(client, kind))
    if not channels:
        return _frame(ctx, name, None, kind)  # nothing to leave: one reply, a null channel
    out = []
    for channel in channels:
        pubsub.unsubscribe(client, kind, channel)
        out.append(_frame(ctx, name, channel, kind))
    return b"".join(out)


@command("subscribe", -2, "pubsub noscript loading stale")
def subscribe(ctx: Context, argv: list[bytes]) -> bytes:
    return _subscribe(ctx, argv, CHANNELS)


@command("unsubscribe", -1, "pubsub noscript loading stale")
def unsubscribe(ctx: Context, argv: list[bytes]) -> bytes:
    return _unsubscribe(ctx, argv, CHANNELS)


@command("psubscribe", -2, "pubsub noscript loading stale")
def psubscribe(ctx: Context, argv: list[bytes]) -> bytes:
    return _subscribe(ctx, argv, PATTERNS)


@command("punsubscribe", -1, "pubsub noscript loading stale")
def punsubscribe(ctx: Context, argv: list[bytes]) -> bytes:
    return _unsubscribe(ctx, argv, PATTERNS)


@command("ssubscribe", -2, "pubsub noscript loading stale", (1, -1, 1))
def ssubscribe(ctx: Context, argv: list[bytes]) -> bytes:
    return _subscribe(ctx, argv, SHARD_CHANNELS)


@command("sunsubscribe", -1, "pubsub noscript loading stale", (1, -1, 1))
def sunsubscribe(ctx: Context, argv: list[bytes]) -> bytes:
    return _unsubscribe(ctx, argv, SHARD_CHANNELS)


@command("publish", 3, "pubsub loading stale fast may-replicate")
def publish(ctx: Context, argv: list[bytes]) -> bytes:
    return b":%d\r\n" % ctx.executor.pubsub.publish(argv[1], argv[2])


@command("spublish", 3, "pubsub loading stale fast may-replicate", (1, 1, 1))
def spublish(ctx: Context, argv: list[bytes]) -> bytes:
    return b":%d\r\n" % ctx.executor.pubsub.spublish(argv[1], argv[2])


_PUBSUB_HELP = [
    b"PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CHANNELS [<pattern>]",
    b"    Return the currently active channels matching a <pattern> (default: '*').",
    b"NUMPAT",
    b"    Return number of subscriptions to patterns.",
    b"NUMSUB [<channel> ...]",
    b"    Return the number of subscribers for the specified channels, excluding",
    b"    pattern subscriptions(default: no channels).",
    b"SHARDCHANNELS [<pattern>]",
    b"    Return the currently active shard level channels matching a <pattern> (default: '*').",
    b"SHARDNUMSUB [<shardchannel> ...]",
    b"    Return the number of subscribers for the specified shard level channel(s)",
    b"HELP",
    b"    Prints this help.",
]


def _active(registry: dict[bytes, dict[int, object]], argv: list[bytes]) -> bytes:
    names = list(registry)
    if len(argv) == 3:
        names = compile_glob(argv[2]).select(names)
    return resp.array([resp.bulk(name) for name in names])


def _numsub(registry: dict[bytes, dict[int, object]], argv: list[bytes]) -> bytes:
    parts = []
    for channel in argv[2:]:
        parts.append(resp.bulk(channel))
        parts.append(b":%d\r\n" % len(registry.get(channel, ())))
    return b"*%d\r\n" % len(parts) + b"".join(parts)


@command("pubsub", -2, "pubsub loading stale",
         subcommands={"channels": -2, "numsub": -2, "numpat": 2, "shardchannels": -2, "shardnumsub": -2,
                      "help": 2})
def pubsub_(ctx: Context, argv: list[bytes]) -> bytes:
    sub = argv[1].lower()
    pubsub = ctx.executor.pubsub
    if sub == b"channels" and len(argv) <= 3:
        return _active(pubsub.channels, argv)
    if sub == b"shardchannels" and len(argv) <= 3:
        return _active(pubsub.shard_channels, argv)
    if sub == b"numsub":
        return _numsub(pubsub.channels, argv)
    if sub == b"shardnumsub":
        return _numsub(pubsub.shard_channels, argv)
    if sub == b"numpat":
        return b":%d\r\n" % len(pubsub.patterns)
    if sub == b"help":
        return resp.array([resp.simple(line) for line in _PUBSUB_HELP])
    if sub in (b"channels", b"shardchannels"):
        return subcommand_syntax_error(argv[1], "pubsub")
    return unknown_subcommand(argv[1], "pubsub")

