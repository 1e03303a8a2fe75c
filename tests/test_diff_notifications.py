"""Differential tests of keyspace notifications (issue 13, item 3): notify-keyspace-events
and the `__keyspace@N__:key` / `__keyevent@N__:event` messages of every command family,
the same bytes from redis-server 7.0 and from kvred (machinery: tests/differential.py).

A case sets notify-keyspace-events (restored to "" afterwards, whatever happens), makes
its first connection a subscriber to `__key*__:*` and runs the commands on the second
one (`C2`). `Events()` then collects, on the subscriber, every message sent since: it
subscribes to a barrier channel and reads up to that reply, so the exact stream (count,
order and bytes of the pmessage frames) is compared without guessing how many to expect.
The barrier goes through the server's command path, after the commands whose events it
follows, on both servers."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest
from differential import (  # noqa: F401  (servers: the fixture)
    C2,
    READ_TIMEOUT_S,
    Case,
    Ctx,
    Servers,
    check_case,
    check_survived,
    hello_masked,
    servers,
)
from differential import C as C1
from rawclient import RawClient, encode_command

BARRIER = "__barrier__"
_BARRIER_REPLIES = (b"*3\r\n$9\r\nsubscribe\r\n$11\r\n" + BARRIER.encode(),
                    b">3\r\n$9\r\nsubscribe\r\n$11\r\n" + BARRIER.encode())
OFF = C1("CONFIG", "SET", "notify-keyspace-events", "")
ACTIVE_EXPIRE_ON = C1("DEBUG", "SET-ACTIVE-EXPIRE", "1")
BLOCK_SETTLE_S = 0.2  # for a blocking command sent on one connection to be waiting


@dataclass
class Events:
    """Every frame the subscriber (the first connection) was sent since the last Events,
    up to the reply of SUBSCRIBE to the barrier channel."""

    def run(self, ctx: Ctx) -> Any:
        ctx.client.send(encode_command("SUBSCRIBE", BARRIER))
        frames = []
        for _ in range(1000):
            frame = ctx.client.read_reply()
            if frame.startswith(_BARRIER_REPLIES):
                return frames
            frames.append(frame)
        return frames + ["<no barrier reply after 1000 frames>"]

    def label(self) -> str:
        return "events since the last look"


def _third(ctx: Ctx) -> RawClient:
    """A third connection (blocking commands: one client waits, another pushes)."""
    extra = ctx.__dict__.get("third")
    if extra is None:
        extra = ctx.__dict__["third"] = RawClient(ctx.server.port, timeout=READ_TIMEOUT_S)
    return extra


@dataclass
class Send3:
    """Send a command on the third connection without waiting for its reply, then let
    it settle (a blocking command that must be waiting before the next step)."""

    args: tuple[str, ...]

    def run(self, ctx: Ctx) -> Any:
        _third(ctx).send(encode_command(*self.args))
        time.sleep(BLOCK_SETTLE_S)
        return None

    def label(self) -> str:
        return "third client sends: " + " ".join(self.args)


@dataclass
class Read3:
    """The third connection's next reply; `last`: then close it."""

    last: bool = False

    def run(self, ctx: Ctx) -> Any:
        reply = _third(ctx).read_reply()
        if self.last:
            ctx.__dict__.pop("third").close()
        return reply

    def label(self) -> str:
        return "third client's reply"


@dataclass
class Sleep:
    seconds: float

    def run(self, ctx: Ctx) -> Any:
        time.sleep(self.seconds)
        return None

    def label(self) -> str:
        return f"sleep {self.seconds} s"


CASES: list[Case] = []


def notify_case(id: str, classes: str, *steps: Any, resp3: bool = False, lazy: bool = False) -> None:
    """A case: FLUSHALL, the setting, the first connection subscribed to every keyspace
    and keyevent channel (RESP3 if `resp3`), then `steps` and a last Events()."""
    setup: list[Any] = [C1("FLUSHALL"), C1("CONFIG", "SET", "notify-keyspace-events", classes)]
    cleanup: list[Any] = [OFF]
    if lazy:  # expiry only by the commands that meet the keys
        setup.append(C1("DEBUG", "SET-ACTIVE-EXPIRE", "0"))
        cleanup.append(ACTIVE_EXPIRE_ON)
    if resp3:
        setup.append(C1("HELLO", "3", norm=hello_masked))
    setup.append(C1("PSUBSCRIBE", "__key*__:*"))
    CASES.append(Case(id, [*setup, *steps, Events(), *([ACTIVE_EXPIRE_ON] if lazy else [])], cleanup))


def config_case(id: str, *steps: Any) -> None:
    CASES.append(Case(id, [C1("FLUSHALL"), *steps], [OFF]))


# ---------------------------------------------------------------- the setting

for value in ("KEA", "A", "g$lshzxet", "AKE", "gKE", "Em", "KEAmn", "n", "xK", "d", "KEg$lshzxetd",
              "$$", "AAm", "", "KE", "e", "t", "Egx", "Km"):
    config_case(f"config-{value or 'empty'}", C1("CONFIG", "SET", "notify-keyspace-events", value),
                C1("CONFIG", "GET", "notify-keyspace-events"))
config_case("config-bad-letter", C1("CONFIG", "SET", "notify-keyspace-events", "KEQ"),
            C1("CONFIG", "GET", "notify-keyspace-events"))
config_case("config-bad-letter-kept", C1("CONFIG", "SET", "notify-keyspace-events", "Kl"),
            C1("CONFIG", "SET", "notify-keyspace-events", "K?"), C1("CONFIG", "GET", "notify-keyspace-events"))
config_case("config-uppercase-name", C1("CONFIG", "SET", "NOTIFY-KEYSPACE-EVENTS", "Kz"),
            C1("CONFIG", "GET", "notify-keyspace-events"))
notify_case("off-nothing", "", C2("SET", "k", "v"), C2("LPUSH", "l", "a"), C2("DEL", "k"))
notify_case("K-only-no-class", "K", C2("SET", "k", "v"), C2("DEL", "k"))
notify_case("class-only-no-KE", "A", C2("SET", "k", "v"), C2("DEL", "k"))

# ---------------------------------------------------------------- strings

notify_case("strings", "KEA",
            C2("SET", "s", "v"), C2("SET", "s", "w", "EX", "100"), C2("SET", "s", "x", "NX"),
            C2("SET", "s", "y", "XX", "GET"), C2("SET", "missing", "y", "XX"), C2("SET", "s", "z", "KEEPTTL"),
            C2("SET", "s2", "v", "PX", "100000", "GET"), C2("SETNX", "s", "a"), C2("SETNX", "n", "a"),
            C2("SETEX", "e", "100", "v"), C2("PSETEX", "p", "100000", "v"), C2("GETSET", "s", "new"),
            C2("GETSET", "gs", "new"), C2("GETDEL", "s"), C2("GETDEL", "s"),
            C2("APPEND", "a", "x"), C2("APPEND", "a", "y"),
            C2("INCR", "i"), C2("DECR", "i"), C2("INCRBY", "i", "5"), C2("DECRBY", "i", "2"),
            C2("INCRBYFLOAT", "f", "1.5"), C2("INCR", "a"),
            C2("SETRANGE", "r", "3", "abc"), C2("SETRANGE", "r", "0", "x"), C2("SETRANGE", "r", "0", ""),
            C2("SETRANGE", "r2", "0", ""),
            C2("MSET", "m1", "a", "m2", "b", "m1", "c"), C2("MSETNX", "m3", "a", "m4", "b"),
            C2("MSETNX", "m4", "x", "m5", "y"),
            C2("GET", "m1"), C2("STRLEN", "m1"), C2("GETRANGE", "m1", "0", "-1"), C2("MGET", "m1", "zz"))
notify_case("getex", "KEA",
            C2("SET", "k", "v"), C2("GETEX", "k"), C2("GETEX", "k", "EX", "100"), C2("GETEX", "k", "PX", "100000"),
            C2("GETEX", "k", "PERSIST"), C2("GETEX", "k", "PERSIST"), C2("GETEX", "k", "EXAT", "100000000000"),
            C2("GETEX", "k", "PXAT", "1"), C2("GETEX", "k", "PERSIST"), C2("GETEX", "missing", "EX", "10"))
notify_case("set-expire-in-the-past", "KEA",
            C2("SET", "k", "v", "PXAT", "1"), C2("EXISTS", "k"), C2("SET", "k2", "v", "EXAT", "1", "GET"))

# ---------------------------------------------------------------- keys and expiry

notify_case("del-unlink", "KEA",
            C2("MSET", "a", "1", "b", "2", "c", "3"), C2("DEL", "a", "missing", "b", "a"), C2("UNLINK", "c", "d"),
            C2("DEL", "nothing"))
notify_case("rename", "KEA",
            C2("SET", "a", "1"), C2("RENAME", "a", "b"), C2("SET", "c", "2"), C2("RENAME", "b", "c"),
            C2("RENAME", "c", "c"), C2("RENAMENX", "c", "c"), C2("SET", "d", "4"), C2("RENAMENX", "c", "d"),
            C2("RENAMENX", "c", "e"), C2("RENAME", "missing", "x"), C2("RPUSH", "l", "x"), C2("EXPIRE", "l", "100"),
            C2("RENAME", "l", "l2"))
notify_case("move-copy", "KEA",
            C2("SET", "a", "1"), C2("MOVE", "a", "1"), C2("SET", "a", "2"), C2("MOVE", "a", "1"),
            C2("SELECT", "1"), C2("COPY", "a", "b"), C2("COPY", "a", "b"), C2("COPY", "a", "b", "REPLACE"),
            C2("COPY", "a", "c", "DB", "0"), C2("COPY", "a", "c", "DB", "0", "REPLACE"), C2("COPY", "missing", "x"),
            C2("MOVE", "b", "0"))
notify_case("expire-persist", "KEA",
            C2("SET", "k", "v"), C2("EXPIRE", "k", "100"), C2("PEXPIRE", "k", "100000"),
            C2("EXPIREAT", "k", "100000000000"), C2("PEXPIREAT", "k", "100000000000000"),
            C2("EXPIRE", "k", "100", "NX"), C2("EXPIRE", "k", "1000", "GT"), C2("PERSIST", "k"), C2("PERSIST", "k"),
            C2("EXPIRE", "missing", "10"), C2("PEXPIREAT", "k", "1"), C2("SET", "j", "v"), C2("EXPIRE", "j", "-1"),
            C2("SET", "h", "v"), C2("EXPIRE", "h", "0"), C2("TTL", "j"), C2("PTTL", "missing"))
notify_case("flush-swapdb-select", "KEA",
            C2("SET", "a", "1"), C2("SELECT", "2"), C2("SET", "b", "2"), C2("SWAPDB", "0", "2"),
            C2("FLUSHDB"), C2("SET", "c", "1"), C2("FLUSHALL"), C2("SET", "d", "1"))
notify_case("lazy-expiry", "KEA",
            C2("SET", "k", "v", "PX", "1"), C2("SET", "k2", "v", "PX", "1"), C2("SET", "k3", "v", "PX", "1"),
            C2("SET", "k4", "v", "PX", "1"), C2("RPUSH", "l", "a"), C2("PEXPIRE", "l", "1"), Sleep(0.05),
            C2("GET", "k"), Events(), C2("SET", "k2", "new"), Events(), C2("EXISTS", "k3"), C2("INCR", "k4"),
            C2("LPUSH", "l", "b"), lazy=True)
notify_case("lazy-expiry-x-and-m", "Exm",
            C2("SET", "k", "v", "PX", "1"), C2("SET", "k2", "v", "PX", "1"), Sleep(0.05),
            C2("GET", "k"), C2("TYPE", "k2"), C2("GET", "k"), lazy=True)
notify_case("lazy-expiry-K-new", "KEn",
            C2("SET", "k", "v", "PX", "1"), Sleep(0.05), C2("SET", "k", "v"), C2("LPUSH", "k", "x"), lazy=True)
notify_case("active-expiry", "Ex",
            C2("SET", "k", "v", "PX", "1"), C2("SET", "other", "v"), Sleep(0.3), C2("DBSIZE"))

# ---------------------------------------------------------------- lists

notify_case("lists", "KEA",
            C2("LPUSH", "l", "a", "b", "c"), C2("RPUSH", "l", "d"), C2("LPUSHX", "nol", "x"), C2("RPUSHX", "nol", "x"),
            C2("LPUSHX", "l", "x", "y"), C2("RPUSHX", "l", "z"), C2("LPOP", "l"), C2("RPOP", "l"),
            C2("LPOP", "l", "2"), C2("RPOP", "l", "0"), C2("LPOP", "missing"), C2("LPOP", "missing", "2"),
            C2("LINSERT", "l", "BEFORE", "a", "n"), C2("LINSERT", "l", "AFTER", "nope", "n"),
            C2("LINSERT", "nol", "AFTER", "a", "n"), C2("LSET", "l", "0", "m"), C2("LSET", "l", "99", "m"),
            C2("LRANGE", "l", "0", "-1"), C2("LREM", "l", "0", "nope"), C2("LREM", "l", "1", "m"),
            C2("LTRIM", "l", "0", "-1"), C2("LTRIM", "l", "0", "0"), C2("LLEN", "l"), C2("LINDEX", "l", "0"),
            C2("LPOS", "l", "a"))
notify_case("lists-emptied", "KEA",
            C2("RPUSH", "a", "1"), C2("LPOP", "a"), C2("RPUSH", "b", "1"), C2("RPOP", "b"),
            C2("RPUSH", "c", "1", "2"), C2("LPOP", "c", "5"), C2("RPUSH", "d", "1", "2"), C2("RPOP", "d", "2"),
            C2("RPUSH", "e", "x", "x"), C2("LREM", "e", "0", "x"), C2("RPUSH", "f", "1", "2"),
            C2("LTRIM", "f", "5", "10"), C2("LTRIM", "nof", "0", "1"))
notify_case("lists-moves", "KEA",
            C2("RPUSH", "src", "1", "2", "3"), C2("LMOVE", "src", "dst", "LEFT", "RIGHT"),
            C2("LMOVE", "src", "dst", "RIGHT", "LEFT"), C2("RPOPLPUSH", "src", "src"),
            C2("RPOPLPUSH", "src", "dst"), C2("RPOPLPUSH", "src", "dst"), C2("RPUSH", "one", "x"),
            C2("LMOVE", "one", "one", "LEFT", "RIGHT"), C2("RPOPLPUSH", "one", "one"),
            C2("LMPOP", "2", "none", "dst", "LEFT"), C2("LMPOP", "1", "dst", "RIGHT", "COUNT", "10"),
            C2("LMPOP", "1", "dst", "RIGHT"))
notify_case("lists-blocking-now", "KEA",
            C2("RPUSH", "l", "a", "b", "c"), C2("BLPOP", "none", "l", "1"), C2("BRPOP", "l", "1"),
            C2("BLMOVE", "l", "m", "LEFT", "LEFT", "1"), C2("RPUSH", "l", "x"), C2("BRPOPLPUSH", "m", "l", "1"),
            C2("BLMPOP", "1", "1", "l", "LEFT", "COUNT", "5"), C2("BLPOP", "l", "m", "1"))
notify_case("lists-blocking-served", "KEA",
            Send3(("BLPOP", "q", "5")), C2("RPUSH", "q", "a", "b"), Read3(),
            Send3(("BRPOP", "q", "5")), Read3(), Send3(("BLMOVE", "q", "r", "LEFT", "RIGHT", "5")),
            C2("LPUSH", "q", "c"), Read3(), Send3(("BLMPOP", "5", "1", "r", "LEFT", "COUNT", "3")), Read3(),
            Send3(("BRPOPLPUSH", "q2", "r2", "5")), C2("RPUSH", "q2", "z"), Read3(last=True))

# ---------------------------------------------------------------- hashes

notify_case("hashes", "KEA",
            C2("HSET", "h", "a", "1", "b", "2"), C2("HSET", "h", "a", "1"), C2("HMSET", "h", "c", "3"),
            C2("HSETNX", "h", "a", "x"), C2("HSETNX", "h", "d", "4"), C2("HSETNX", "h2", "d", "4"),
            C2("HINCRBY", "h", "n", "5"), C2("HINCRBY", "h3", "n", "5"), C2("HINCRBYFLOAT", "h", "f", "1.5"),
            C2("HINCRBYFLOAT", "h4", "f", "1.5"), C2("HDEL", "h", "nope"), C2("HDEL", "h", "a", "b"),
            C2("HDEL", "missing", "a"), C2("HGET", "h", "c"), C2("HGETALL", "h2"), C2("HDEL", "h2", "d", "x"),
            C2("HDEL", "h3", "n"), C2("HINCRBY", "h", "c", "x"))

# ---------------------------------------------------------------- sets

notify_case("sets", "KEA",
            C2("SADD", "s", "a", "b", "c"), C2("SADD", "s", "a"), C2("SADD", "s", "a", "d"),
            C2("SREM", "s", "nope"), C2("SREM", "s", "a"), C2("SREM", "s", "b", "c", "d"),
            C2("SADD", "s", "1"), C2("SPOP", "s"), C2("SPOP", "s"), C2("SADD", "t", "1", "2", "3"),
            C2("SPOP", "t", "0"), C2("SPOP", "t", "1", norm=lambda r: r[:4]), C2("SPOP", "t", "5", norm=lambda r: r[:4]),
            C2("SPOP", "t", "5"), C2("SADD", "u", "1", "2", "3", "4", "5", "6", "7", "8"),
            C2("SPOP", "u", "7", norm=lambda r: r[:4]), C2("SCARD", "u"), C2("SMEMBERS", "v"))
notify_case("sets-smove", "KEA",
            C2("SADD", "a", "x", "y"), C2("SMOVE", "a", "b", "x"), C2("SMOVE", "a", "b", "nope"),
            C2("SMOVE", "a", "a", "y"), C2("SADD", "b", "y"), C2("SMOVE", "a", "b", "y"), C2("SMOVE", "missing", "b", "y"))
notify_case("sets-store", "KEA",
            C2("SADD", "a", "1", "2", "3"), C2("SADD", "b", "2", "3", "4"), C2("SINTERSTORE", "i", "a", "b"),
            C2("SUNIONSTORE", "u", "a", "b"), C2("SDIFFSTORE", "d", "a", "b"), C2("SDIFFSTORE", "d", "a", "a"),
            C2("SINTERSTORE", "i", "a", "missing"), C2("SUNIONSTORE", "u", "missing"), C2("SDIFFSTORE", "none", "x"),
            C2("SET", "str", "v"), C2("SINTERSTORE", "str", "a", "b"), C2("SINTER", "a", "b"))

# ---------------------------------------------------------------- sorted sets

notify_case("zsets", "KEA",
            C2("ZADD", "z", "1", "a"), C2("ZADD", "z", "1", "a"), C2("ZADD", "z", "2", "a"), C2("ZADD", "z", "1", "b", "2", "c"),
            C2("ZADD", "z", "NX", "5", "a"), C2("ZADD", "z", "XX", "5", "new"), C2("ZADD", "z", "XX", "CH", "5", "a"),
            C2("ZADD", "z", "GT", "1", "a"), C2("ZADD", "z", "INCR", "1", "a"), C2("ZADD", "z", "INCR", "0", "a"),
            C2("ZADD", "z", "NX", "INCR", "1", "a"), C2("ZINCRBY", "z", "2", "b"), C2("ZINCRBY", "z2", "2", "b"),
            C2("ZADD", "nz", "XX", "1", "a"), C2("ZREM", "z", "nope"), C2("ZREM", "z", "a", "nope"),
            C2("ZSCORE", "z", "b"), C2("ZRANGE", "z", "0", "-1"), C2("ZREM", "z2", "b"))
notify_case("zsets-ranges", "KEA",
            C2("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "6", "f"),
            C2("ZREMRANGEBYSCORE", "z", "10", "20"), C2("ZREMRANGEBYSCORE", "z", "1", "1"),
            C2("ZREMRANGEBYRANK", "z", "0", "0"), C2("ZREMRANGEBYRANK", "z", "10", "20"),
            C2("ZADD", "lex", "0", "a", "0", "b", "0", "c"), C2("ZREMRANGEBYLEX", "lex", "[a", "[a"),
            C2("ZREMRANGEBYLEX", "lex", "[x", "[z"), C2("ZREMRANGEBYLEX", "lex", "-", "+"),
            C2("ZREMRANGEBYSCORE", "z", "-inf", "+inf"), C2("ZREMRANGEBYRANK", "missing", "0", "-1"))
notify_case("zsets-pops", "KEA",
            C2("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"), C2("ZPOPMIN", "z"), C2("ZPOPMAX", "z", "1"),
            C2("ZPOPMIN", "z", "0"), C2("ZPOPMAX", "z", "5"), C2("ZPOPMIN", "z"), C2("ZADD", "y", "1", "a"),
            C2("ZPOPMIN", "y"), C2("ZADD", "x", "1", "a", "2", "b"), C2("ZMPOP", "2", "none", "x", "MAX"),
            C2("ZMPOP", "1", "x", "MIN", "COUNT", "5"), C2("ZADD", "w", "1", "a", "2", "b"),
            C2("BZPOPMIN", "none", "w", "1"), C2("BZPOPMAX", "w", "1"), C2("ZADD", "w", "1", "a", "2", "b"),
            C2("BZMPOP", "1", "1", "w", "MIN", "COUNT", "1"))
notify_case("zsets-blocking-served", "KEA",
            Send3(("BZPOPMIN", "q", "5")), C2("ZADD", "q", "1", "a", "2", "b"), Read3(),
            Send3(("BZMPOP", "5", "1", "q", "MAX", "COUNT", "5")), Read3(),
            Send3(("BZPOPMAX", "q", "5")), C2("ZADD", "q", "1", "a"), Read3(last=True))
notify_case("zsets-store", "KEA",
            C2("ZADD", "a", "1", "x", "2", "y"), C2("ZADD", "b", "2", "y", "3", "z"),
            C2("ZUNIONSTORE", "u", "2", "a", "b"), C2("ZINTERSTORE", "i", "2", "a", "b"),
            C2("ZDIFFSTORE", "d", "2", "a", "b"), C2("ZRANGESTORE", "r", "a", "0", "-1"),
            C2("ZINTERSTORE", "i", "2", "a", "missing"), C2("ZDIFFSTORE", "d", "1", "missing"),
            C2("ZRANGESTORE", "r", "a", "10", "20"), C2("ZUNIONSTORE", "none", "1", "missing"),
            C2("ZRANGESTORE", "none", "a", "5", "6"), C2("ZUNION", "2", "a", "b"))

# ---------------------------------------------------------------- bitmaps, HyperLogLog, SORT

notify_case("bitops", "KEA",
            C2("SETBIT", "b", "7", "1"), C2("SETBIT", "b", "7", "1"), C2("SETBIT", "b", "7", "0"),
            C2("SETBIT", "b", "100", "0"), C2("GETBIT", "b", "7"), C2("BITCOUNT", "b"),
            C2("SET", "x", "ab"), C2("BITOP", "AND", "d", "b", "x"), C2("BITOP", "OR", "d", "missing"),
            C2("BITOP", "NOT", "d2", "missing"), C2("BITFIELD", "bf", "SET", "u8", "0", "5"),
            C2("BITFIELD", "bf", "SET", "u8", "0", "5"), C2("BITFIELD", "bf", "GET", "u8", "0"),
            C2("BITFIELD", "bf", "INCRBY", "u8", "0", "1", "GET", "u8", "0"),
            C2("BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "300"), C2("BITFIELD_RO", "bf", "GET", "u8", "0"),
            C2("BITFIELD", "bf2", "GET", "u8", "0"), C2("BITPOS", "b", "1"))
notify_case("hyperloglog", "KEA",
            C2("PFADD", "h", "a", "b"), C2("PFADD", "h", "a"), C2("PFADD", "h", "c"), C2("PFADD", "e"),
            C2("PFADD", "e"), C2("PFCOUNT", "h"), C2("PFCOUNT", "h", "e"), C2("PFMERGE", "m", "h", "e"),
            C2("PFMERGE", "m"), C2("PFMERGE", "n"))
notify_case("sort-store", "KEA",
            C2("RPUSH", "l", "3", "1", "2"), C2("SORT", "l", "STORE", "dst"), C2("SORT", "l", "STORE", "dst"),
            C2("SORT", "missing", "STORE", "dst"), C2("SORT", "missing", "STORE", "dst"), C2("SORT", "l"),
            C2("SADD", "s", "b", "a"), C2("SORT", "s", "ALPHA", "STORE", "s2"), C2("SORT_RO", "l"))

# ---------------------------------------------------------------- classes, keymiss, RESP3, MULTI

MIXED = (C2("SET", "s", "1"), C2("INCR", "s"), C2("LPUSH", "l", "a"), C2("LPOP", "l"), C2("SADD", "t", "a"),
         C2("HSET", "h", "f", "v"), C2("ZADD", "z", "1", "a"), C2("EXPIRE", "s", "100"), C2("PERSIST", "s"),
         C2("RENAME", "s", "s2"), C2("DEL", "s2", "t"), C2("GET", "nope"), C2("SET", "x", "1", "PX", "1"),
         Sleep(0.05), C2("GET", "x"))
for classes in ("Kl", "Eg", "KEn", "Ex", "KEAm", "K$", "Es", "Kh", "Ez", "KEgn", "KEm", "Kx", "KEA"):
    notify_case(f"classes-{classes}", classes, *MIXED, lazy=True)
notify_case("keymiss", "KEm",
            C2("GET", "a"), C2("MGET", "a", "b"), C2("EXISTS", "a"), C2("TYPE", "a"), C2("TTL", "a"),
            C2("OBJECT", "ENCODING", "a"), C2("STRLEN", "a"), C2("HGET", "a", "f"), C2("LRANGE", "a", "0", "-1"),
            C2("SMEMBERS", "a"), C2("ZRANGE", "a", "0", "-1"), C2("SET", "a", "1"), C2("GET", "a"),
            C2("GETRANGE", "b", "0", "1"), C2("HGETALL", "b"), C2("LLEN", "b"), C2("SCARD", "b"),
            C2("ZCARD", "b"), C2("GETBIT", "b", "0"), C2("BITCOUNT", "b"), C2("PFCOUNT", "b"),
            C2("TOUCH", "b"), C2("LINDEX", "b", "0"), C2("HEXISTS", "b", "f"), C2("SISMEMBER", "b", "m"),
            C2("ZSCORE", "b", "m"), C2("SINTER", "b", "c"), C2("SORT", "b"))
notify_case("resp3-subscriber", "KEA",
            C2("SET", "k", "v"), C2("LPUSH", "l", "a"), C2("LPOP", "l"), C2("DEL", "k"), resp3=True)
notify_case("resp3-commands", "KEA",
            C2("HELLO", "3", norm=hello_masked), C2("SET", "k", "v"), C2("HSET", "h", "a", "1"), C2("HDEL", "h", "a"),
            resp3=True)
notify_case("multi-exec", "KEA",
            C2("MULTI"), C2("SET", "a", "1"), C2("INCR", "a"), C2("RPUSH", "l", "x"), C2("RPOP", "l"), C2("EXEC"))
notify_case("other-database", "KEA",
            C2("SELECT", "5"), C2("SET", "k", "v"), C2("RENAME", "k", "k2"), C2("MOVE", "k2", "0"))
notify_case("binary-key", "KEA", C2("SET", b"k\x00\xff \r\n", "v"), C2("DEL", b"k\x00\xff \r\n"))


@pytest.mark.parametrize("seq", CASES, ids=[c.id for c in CASES])
def test_same_events_as_redis(servers: Servers, seq: Case) -> None:  # noqa: F811
    check_case(servers, seq)


def test_kvred_survived(servers: Servers) -> None:  # noqa: F811
    check_survived(servers)
