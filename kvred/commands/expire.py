"""Key expiry commands (Redis's expire.c): EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT with
NX|XX|GT|LT, TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST.

Every TTL is stored and logged as an absolute unix time in milliseconds
(`PEXPIREAT key ms`), so replay gives each key the same deadline whenever it runs.
A deadline already past deletes the key at once, logged as DEL (never while the
AOF loads: the key is then removed when loading ends).
"""

from __future__ import annotations

from .. import resp
from ..notify import NOTIFY_GENERIC
from .base import ERR_NOT_INT, Context, command, error_quoting, int_arg

__all__: list[str] = []

ZERO = b":0\r\n"
ONE = b":1\r\n"
_INT64_MAX = 2**63 - 1
EXPIRE_NX, EXPIRE_XX, EXPIRE_GT, EXPIRE_LT = 1, 2, 4, 8
_EXPIRE_OPTIONS = {b"nx": EXPIRE_NX, b"xx": EXPIRE_XX, b"gt": EXPIRE_GT, b"lt": EXPIRE_LT}


def _expire_options(argv: list[bytes]) -> int | bytes:
    """NX|XX|GT|LT after the time (Redis's parseExtendedExpireArgumentsOrReply)."""
    flags = 0
    for arg in argv[3:]:
        word = arg.split(b"\0", 1)[0]  # compared as a C string, as Redis does
        flag = _EXPIRE_OPTIONS.get(word.lower())
        if flag is None:
            return error_quoting("Unsupported option ", word, "")
        flags |= flag
    if flags & EXPIRE_NX and flags & (EXPIRE_XX | EXPIRE_GT | EXPIRE_LT):
        return b"-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
    if flags & EXPIRE_GT and flags & EXPIRE_LT:
        return b"-ERR GT and LT options at the same time are not compatible\r\n"
    return flags


def _expire(ctx: Context, argv: list[bytes], relative: bool, seconds: bool) -> bytes:
    """EXPIRE (relative, seconds), PEXPIRE, EXPIREAT, PEXPIREAT."""
    flags = _expire_options(argv)
    if isinstance(flags, bytes):
        return flags
    when = int_arg(argv[2])
    if when is None:
        return ERR_NOT_INT
    invalid = b"-ERR invalid expire time in '" + argv[0].lower() + b"' command\r\n"
    if seconds:
        if not -(_INT64_MAX // 1000) <= when <= _INT64_MAX // 1000:  # C's LLONG_MIN / 1000 truncates
            return invalid
        when *= 1000
    databases = ctx.databases
    if relative:
        now = databases.now_ms()
        if when > _INT64_MAX - now:
            return invalid
        when += now
    keyspace, key = ctx.keyspace, argv[1]
    if keyspace.lookup_write(key) is None:
        return ZERO
    if flags:
        current = keyspace.get_expire(key)  # None: no TTL, an infinite one for GT and LT
        if flags & EXPIRE_NX and current is not None:
            return ZERO
        if flags & EXPIRE_XX and current is None:
            return ZERO
        if flags & EXPIRE_GT and (current is None or when <= current):
            return ZERO
        if flags & EXPIRE_LT and current is not None and when >= current:
            return ZERO
    if when <= databases.now_ms() and not databases.loading:
        keyspace.delete(key)  # a deadline already past: the key is gone now
        ctx.aof_feed([b"DEL", key])
        keyspace.notify(NOTIFY_GENERIC, b"del", key)
        return ONE
    keyspace.set_expire(key, when)
    ctx.aof_feed([b"PEXPIREAT", key, b"%d" % when])
    keyspace.notify(NOTIFY_GENERIC, b"expire", key)
    return ONE


@command("expire", -3, "write fast", (1, 1, 1))
def expire(ctx: Context, argv: list[bytes]) -> bytes:
    return _expire(ctx, argv, relative=True, seconds=True)


@command("pexpire", -3, "write fast", (1, 1, 1))
def pexpire(ctx: Context, argv: list[bytes]) -> bytes:
    return _expire(ctx, argv, relative=True, seconds=False)


@command("expireat", -3, "write fast", (1, 1, 1))
def expireat(ctx: Context, argv: list[bytes]) -> bytes:
    return _expire(ctx, argv, relative=False, seconds=True)


@command("pexpireat", -3, "write fast", (1, 1, 1))
def pexpireat(ctx: Context, argv: list[bytes]) -> bytes:
    return _expire(ctx, argv, relative=False, seconds=False)


def _ttl(ctx: Context, key: bytes, milliseconds: bool, absolute: bool) -> bytes:
    """-2 no key, -1 no TTL, else the TTL (or the deadline), rounded as Redis rounds
    seconds: (ms + 500) / 1000."""
    keyspace = ctx.keyspace
    if keyspace.peek(key) is None:
        return b":-2\r\n"
    when = keyspace.get_expire(key)
    if when is None:
        return b":-1\r\n"
    value = when if absolute else max(when - ctx.databases.now_ms(), 0)
    return resp.integer(value if milliseconds else (value + 500) // 1000)


@command("ttl", 2, "readonly fast", (1, 1, 1))
def ttl(ctx: Context, argv: list[bytes]) -> bytes:
    return _ttl(ctx, argv[1], milliseconds=False, absolute=False)


@command("pttl", 2, "readonly fast", (1, 1, 1))
def pttl(ctx: Context, argv: list[bytes]) -> bytes:
    return _ttl(ctx, argv[1], milliseconds=True, absolute=False)


@command("expiretime", 2, "readonly fast", (1, 1, 1))
def expiretime(ctx: Context, argv: list[bytes]) -> bytes:
    return _ttl(ctx, argv[1], milliseconds=False, absolute=True)


@command("pexpiretime", 2, "readonly fast", (1, 1, 1))
def pexpiretime(ctx: Context, argv: list[bytes]) -> bytes:
    return _ttl(ctx, argv[1], milliseconds=True, absolute=True)


@command("persist", 2, "write fast", (1, 1, 1))
def persist(ctx: Context, argv: list[bytes]) -> bytes:
    keyspace, key = ctx.keyspace, argv[1]
    if keyspace.lookup_write(key) is None or not keyspace.persist(key):
        return ZERO
    ctx.aof_feed(argv)
    keyspace.notify(NOTIFY_GENERIC, b"persist", key)
    return ONE
