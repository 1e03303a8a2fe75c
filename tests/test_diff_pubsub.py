"""Differential tests of pub/sub (issue 13): SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE
SSUBSCRIBE SUNSUBSCRIBE PUBLISH SPUBLISH PUBSUB, the same bytes to redis-server 7.0 and to
kvred, the same replies back (machinery: tests/differential.py).

A case's first connection is the subscriber; `C2`/`Raw2` steps run on the second
connection, usually the publisher. `Raw(b"", n)` reads n frames that the first connection
was sent unasked (messages, in order)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from differential import (  # noqa: F401  (servers: the fixture)
    C2,
    C,
    Case,
    Cases,
    Ctx,
    Raw,
    RawClose,
    Servers,
    Silent,
    check_case,
    check_survived,
    hello_masked,
    servers,
    sorted_keys,
)
from rawclient import encode_command

CASES = Cases()
case, arity = CASES.case, CASES.arity


def R(*args: bytes | str, n: int = 1) -> Raw:
    """One command that gets `n` replies (SUBSCRIBE a b c: one per channel)."""
    return Raw(encode_command(*args), n)


@dataclass
class Raw2:
    """R, on the second connection (a subscriber other than the case's client)."""

    data: bytes
    replies: int = 1

    def run(self, ctx: Ctx) -> Any:
        other = ctx.second()
        other.send(self.data)
        return [other.read_reply() for _ in range(self.replies)]

    def label(self) -> str:
        return f"other client: raw {self.data[:80]!r} ({self.replies} replies)"


def R2(*args: bytes | str, n: int = 1) -> Raw2:
    return Raw2(encode_command(*args), n)


@dataclass
class AnyOrder:
    """Send `data` (maybe b""), read n replies whose order is a hash table's order in Redis
    (UNSUBSCRIBE with no channels walks a dict; pattern matches are tried in dict order).

    Why normalised: Redis seeds its hash function at random on each start, so the order
    differs between two runs of redis-server itself. Compared: the frames in sorted order,
    with the subscription counts (the last element of each frame) kept in arrival order,
    as they must still count down one by one."""

    data: bytes
    replies: int

    def run(self, ctx: Ctx) -> Any:
        if self.data:
            ctx.client.send(self.data)
        frames = [ctx.client.read_reply() for _ in range(self.replies)]
        counts = [f.rsplit(b"\r\n:", 1)[-1] if b"\r\n:" in f else None for f in frames]
        bodies = sorted(f.rsplit(b"\r\n:", 1)[0] if b"\r\n:" in f else f for f in frames)
        return bodies, counts

    def label(self) -> str:
        return f"raw {self.data[:80]!r} ({self.replies} replies, any order)"


def U(*args: bytes | str, n: int) -> AnyOrder:
    return AnyOrder(encode_command(*args), n)


READ = Raw(b"", 1)  # one frame the server sent unasked


def hello3() -> Any:
    return C("HELLO", "3", norm=hello_masked)


# --- SUBSCRIBE / UNSUBSCRIBE: replies and counts -------------------------------------------

case("subscribe-one", R("SUBSCRIBE", "a"), R("UNSUBSCRIBE", "a"), C("PING"))
case("subscribe-many", R("SUBSCRIBE", "a", "b", "c", n=3), U("UNSUBSCRIBE", n=3))
case("subscribe-duplicates", R("SUBSCRIBE", "a", "a", "b", "a", n=4), R("SUBSCRIBE", "b", n=1),
     R("UNSUBSCRIBE", "a", "a", "x", n=3), R("UNSUBSCRIBE", n=1))
case("unsubscribe-nothing-subscribed", R("UNSUBSCRIBE"), C("GET", "k"))
case("unsubscribe-unknown-channel", R("UNSUBSCRIBE", "nope", "other", n=2), C("SET", "k", "v"))
case("unsubscribe-partial", R("SUBSCRIBE", "a", "b", n=2), R("UNSUBSCRIBE", "b", "zz", n=2),
     R("UNSUBSCRIBE", "a"), C("GET", "k"))
case("punsubscribe-nothing", R("PUNSUBSCRIBE"), R("PUNSUBSCRIBE", "x*", "y", n=2), C("PING"))
case("sunsubscribe-nothing", R("SUNSUBSCRIBE"), R("SUNSUBSCRIBE", "x", n=1), C("PING"))
case("psubscribe-many", R("PSUBSCRIBE", "a*", "b?", "[cd]*", n=3), R("PUNSUBSCRIBE", "b?", n=1),
     U("PUNSUBSCRIBE", n=2))
case("mixed-counts", R("SUBSCRIBE", "a", "b", n=2), R("PSUBSCRIBE", "a*", "a", n=2),
     R("SSUBSCRIBE", "s1", "s2", n=2), R("SUBSCRIBE", "c"), U("UNSUBSCRIBE", n=3),
     R("PUNSUBSCRIBE", "a", n=1), U("SUNSUBSCRIBE", n=2), R("PUNSUBSCRIBE", n=1), C("GET", "k"))
case("subscribe-same-name-channel-and-pattern", R("SUBSCRIBE", "x*"), R("PSUBSCRIBE", "x*"),
     C2("PUBLISH", "x*", "m"), Raw(b"", 2), C2("PUBLISH", "xyz", "m2"), READ)
case("unsubscribe-all-leaves-mode-then-unsub-again", R("SUBSCRIBE", "a"), R("UNSUBSCRIBE"),
     R("UNSUBSCRIBE"), C("GET", "k"))
case("sunsubscribe-does-not-touch-channels", R("SUBSCRIBE", "a"), R("SSUBSCRIBE", "a"),
     R("SUNSUBSCRIBE"), C2("PUBLISH", "a", "still"), READ, C2("SPUBLISH", "a", "gone"), C("PING"))

# --- messages: delivery and order ------------------------------------------------------------

case("message-basic", R("SUBSCRIBE", "ch"), C2("PUBLISH", "ch", "hello"), READ)
case("message-order", R("SUBSCRIBE", "a", "b", n=2),
     C2("PUBLISH", "a", "1"), C2("PUBLISH", "b", "2"), C2("PUBLISH", "a", "3"), C2("PUBLISH", "zz", "x"),
     C2("PUBLISH", "b", "4"), Raw(b"", 4), C("PING"))
case("message-pipelined-publishes", R("SUBSCRIBE", "ch"),
     Raw2(b"".join(encode_command("PUBLISH", "ch", str(i)) for i in range(20)), 20), Raw(b"", 20))
case("message-empty-and-large", R("SUBSCRIBE", "ch"), C2("PUBLISH", "ch", ""), READ,
     C2("PUBLISH", "ch", "x" * 100_000), READ)
case("message-after-unsubscribe-not-delivered", R("SUBSCRIBE", "a", "b", n=2), R("UNSUBSCRIBE", "a"),
     C2("PUBLISH", "a", "lost"), C2("PUBLISH", "b", "kept"), READ, Silent(b""))
case("pmessage-basic", R("PSUBSCRIBE", "news.*"), C2("PUBLISH", "news.tech", "m"), READ,
     C2("PUBLISH", "news", "no"), C2("PUBLISH", "news.x", "m2"), READ, Silent(b""))
case("pmessage-glob-forms", R("PSUBSCRIBE", "h?llo", "h[ae]y", "b[^a]d", "esc\\*", n=4),
     C2("PUBLISH", "hello", "1"), READ, C2("PUBLISH", "hay", "2"), READ, C2("PUBLISH", "bad", "no"),
     C2("PUBLISH", "bed", "3"), READ, C2("PUBLISH", "escX", "no"), C2("PUBLISH", "esc*", "4"), READ)
case("pmessage-two-patterns-match", R("PSUBSCRIBE", "n*", "ne*", n=2), C2("PUBLISH", "news", "m"),
     AnyOrder(b"", 2))
case("channel-and-pattern-overlap", R("SUBSCRIBE", "news"), R("PSUBSCRIBE", "n*"),
     C2("PUBLISH", "news", "m"), Raw(b"", 2))
case("pattern-subscribed-twice", R("PSUBSCRIBE", "n*", "n*", n=2), C2("PUBLISH", "news", "m"), READ,
     C("PING"))
case("publish-counts-two-subscribers", R2("SUBSCRIBE", "a"), R2("PSUBSCRIBE", "*"), C("PUBLISH", "a", "x"),
     Raw2(b"", 2), C("PUBLISH", "b", "y"), Raw2(b"", 1))
case("publish-no-subscribers", C("PUBLISH", "ch", "m"), C("PUBLISH", "ch", ""), C("SPUBLISH", "ch", "m"))
case("publish-count-channel-plus-patterns", R2("SUBSCRIBE", "news"), R2("PSUBSCRIBE", "n*", "*", "x*", n=3),
     R2("SSUBSCRIBE", "news"), C("PUBLISH", "news", "m"), C("SPUBLISH", "news", "s"),
     C("PUBLISH", "other", "m"))

# --- shard channels ------------------------------------------------------------------------

case("ssubscribe-smessage", R("SSUBSCRIBE", "s"), C2("SPUBLISH", "s", "m"), READ,
     C2("PUBLISH", "s", "not-shard"), C2("SPUBLISH", "s", "m2"), READ)
case("ssubscribe-many", R("SSUBSCRIBE", "a", "b", "a", n=3), R("SUNSUBSCRIBE", "a", "q", n=2),
     R("SUNSUBSCRIBE", n=1))
case("spublish-not-to-patterns", R("PSUBSCRIBE", "*"), C2("SPUBLISH", "s", "m"), C2("PUBLISH", "s", "p"), READ)
case("ssubscribe-mode-restrictions", R("SSUBSCRIBE", "s"), C("GET", "k"), C("PING"), R("SUNSUBSCRIBE"),
     C("GET", "k"))

# --- RESP2 subscribed mode ---------------------------------------------------------------------

case("resp2-mode-get", R("SUBSCRIBE", "a"), C("GET", "k"), C("SET", "k", "v"), C("PUBLISH", "a", "x"))
case("resp2-mode-client-list", R("SUBSCRIBE", "a"), C("CLIENT", "LIST"), C("CLIENT", "ID"), C("CLIENT", "NOPE"))
case("resp2-mode-multi", R("SUBSCRIBE", "a"), C("MULTI"), C("EXEC"), C("WATCH", "k"))
case("resp2-mode-misc", R("PSUBSCRIBE", "a*"), C("ECHO", "x"), C("SELECT", "1"), C("HELLO"), C("INFO"),
     C("COMMAND"), C("NOSUCHCMD"), C("GET"), C("PUBSUB", "NUMPAT"), C("SPUBLISH", "a", "b"))
case("resp2-mode-ping", R("SUBSCRIBE", "a"), C("PING"), C("PING", "msg"), C("PING", ""), C("PING", "a", "b"))
case("resp2-mode-ping-binary", R("SUBSCRIBE", "a"), C("PING", b"\x00\xff\r\n"))
case("resp2-mode-quit", R("SUBSCRIBE", "a"), RawClose(encode_command("QUIT")))
case("resp2-mode-reset", R("SUBSCRIBE", "a"), R("PSUBSCRIBE", "b*"), C("RESET"), C("GET", "k"),
     C2("PUBLISH", "a", "x"), C2("PUBLISH", "bb", "x"), C("PING"))
case("resp2-mode-inline-ping", R("SUBSCRIBE", "a"), Raw(b"PING\r\n"), Raw(b"GET k\r\n"))
case("resp2-mode-pipeline", R("SUBSCRIBE", "a"),
     Raw(encode_command("PING") + encode_command("GET", "x") + encode_command("SUBSCRIBE", "b")
         + encode_command("PING", "z"), 4))
case("resp2-mode-subscribe-arity-error", R("SUBSCRIBE", "a"), C("SUBSCRIBE"), C("PSUBSCRIBE"), C("SSUBSCRIBE"))
case("resp2-mode-hello3-switch", R("SUBSCRIBE", "a"), C("HELLO", "3", norm=hello_masked), C("GET", "k"),
     C2("PUBLISH", "a", "m"), READ)

# --- RESP3 -------------------------------------------------------------------------------------

case("resp3-subscribe-push-frames", hello3(), R("SUBSCRIBE", "a", "b", n=2), R("PSUBSCRIBE", "p*"),
     R("SSUBSCRIBE", "s"), U("UNSUBSCRIBE", n=2), R("PUNSUBSCRIBE"), R("SUNSUBSCRIBE"), R("UNSUBSCRIBE"))
case("resp3-any-command-while-subscribed", hello3(), R("SUBSCRIBE", "a"), C("SET", "k", "v"), C("GET", "k"),
     C("PING"), C("PING", "m"), C("CLIENT", "ID", norm=lambda raw: raw[:1]), C("MULTI"), C("INCR", "n"),
     C("EXEC"), C("PUBSUB", "NUMSUB", "a"))
case("resp3-messages", hello3(), R("SUBSCRIBE", "a"), R("PSUBSCRIBE", "*"), R("SSUBSCRIBE", "s"),
     C2("PUBLISH", "a", "m1"), Raw(b"", 2), C2("SPUBLISH", "s", "m2"), READ, C("GET", "k"))
case("resp3-self-publish", hello3(), R("SUBSCRIBE", "ch"), R("PUBLISH", "ch", "me", n=2),
     R("PSUBSCRIBE", "c*"), R("PUBLISH", "ch", "again", n=3), R("SSUBSCRIBE", "s"),
     R("SPUBLISH", "s", "shard", n=2))
case("resp3-message-between-replies", hello3(), R("SUBSCRIBE", "a"), C("SET", "k", "v"),
     C2("PUBLISH", "a", "m"), C("GET", "k"), READ)
case("resp3-quit-reset", hello3(), R("SUBSCRIBE", "a"), C("RESET"), C2("PUBLISH", "a", "m"), C("PING"))

# --- PUBSUB ----------------------------------------------------------------------------------

case("pubsub-channels", R2("SUBSCRIBE", "news.a"), R2("SUBSCRIBE", "news.b"), R2("SUBSCRIBE", "other"),
     C("PUBSUB", "CHANNELS", norm=sorted_keys), C("PUBSUB", "CHANNELS", "news.*", norm=sorted_keys),
     C("PUBSUB", "CHANNELS", "none*"), C("PUBSUB", "channels", "*[a]", norm=sorted_keys))
case("pubsub-channels-empty", C("PUBSUB", "CHANNELS"), C("PUBSUB", "SHARDCHANNELS"), C("PUBSUB", "NUMPAT"),
     C("PUBSUB", "NUMSUB"), C("PUBSUB", "SHARDNUMSUB"))
case("pubsub-channels-excludes-patterns", R2("PSUBSCRIBE", "news.*"), R2("SSUBSCRIBE", "sh"),
     C("PUBSUB", "CHANNELS"), C("PUBSUB", "NUMPAT"), C("PUBSUB", "SHARDCHANNELS"))
case("pubsub-numsub", R("SUBSCRIBE", "a", "b", n=2), R2("SUBSCRIBE", "a"),
     C2("PUBSUB", "NUMSUB", "a", "b", "c", "a"), C2("PUBSUB", "NUMSUB"))
case("pubsub-numpat", R("PSUBSCRIBE", "a*", "b*", n=2), R2("PSUBSCRIBE", "a*"), C2("PUBSUB", "NUMPAT"),
     C2("PUBSUB", "NUMSUB", "a*"))
case("pubsub-shard", R("SSUBSCRIBE", "s1", "s2", n=2), R2("SSUBSCRIBE", "s1"),
     C2("PUBSUB", "SHARDNUMSUB", "s1", "s2", "s3"), C2("PUBSUB", "SHARDCHANNELS", "s1"),
     C2("PUBSUB", "NUMSUB", "s1"))
case("pubsub-shardchannels-sorted", R2("SSUBSCRIBE", "s1"), R2("SSUBSCRIBE", "s2"), R2("SSUBSCRIBE", "t"),
     C("PUBSUB", "SHARDCHANNELS", norm=sorted_keys), C("PUBSUB", "SHARDCHANNELS", "s*", norm=sorted_keys))
case("pubsub-after-disconnect", R2("SUBSCRIBE", "a"), R2("PSUBSCRIBE", "x*"), R2("SSUBSCRIBE", "s"),
     R2("QUIT"), C("PUBSUB", "NUMSUB", "a"), C("PUBSUB", "NUMPAT"), C("PUBSUB", "SHARDNUMSUB", "s"),
     C("PUBLISH", "a", "m"))
case("pubsub-help", C("PUBSUB", "HELP"), C("PUBSUB", "help"))
case("pubsub-errors", C("PUBSUB"), C("PUBSUB", "NOPE"), C("PUBSUB", "NUMPAT", "x"),
     C("PUBSUB", "CHANNELS", "a", "b"), C("PUBSUB", "SHARDCHANNELS", "a", "b"), C("PUBSUB", "HELP", "x"),
     C("PUBSUB", ""), C("PUBSUB", "NUMSUBX", "a"))

# --- binary channels and messages --------------------------------------------------------------

BIN = b"\x00ch\r\n\xff"
case("binary-channel-and-message", R("SUBSCRIBE", BIN), C2("PUBLISH", BIN, b"\r\n\x00m\xfe"), READ,
     C2("PUBSUB", "NUMSUB", BIN), R("UNSUBSCRIBE", BIN))
case("binary-pattern", R("PSUBSCRIBE", b"\x00*\xff"), C2("PUBLISH", b"\x00abc\xff", b"\x01"), READ,
     R("PUNSUBSCRIBE"))
case("binary-shard", R("SSUBSCRIBE", BIN), C2("SPUBLISH", BIN, b"\x00"), READ)
case("utf8-channel", R("SUBSCRIBE", "kanäl"), R("PSUBSCRIBE", "kan?l"), C2("PUBLISH", "kanäl", "ü"), Raw(b"", 1))

# --- MULTI -------------------------------------------------------------------------------------

case("subscribe-inside-multi", C("MULTI"), C("SUBSCRIBE", "a"), C("PUBLISH", "a", "x"), C("EXEC"),
     C("PING"), C2("PUBLISH", "a", "m"), READ)
case("subscribe-many-inside-multi", C("MULTI"), C("SUBSCRIBE", "a", "b"), C("PSUBSCRIBE", "p*"), C("EXEC"),
     C("GET", "k"))
case("unsubscribe-inside-multi", R("SUBSCRIBE", "a"), C("RESET"), C("MULTI"), C("UNSUBSCRIBE"),
     C("PUBSUB", "NUMSUB", "a"), C("EXEC"))
case("publish-inside-multi", R2("SUBSCRIBE", "a"), C("MULTI"), C("PUBLISH", "a", "1"), C("PUBLISH", "a", "2"),
     C("SPUBLISH", "a", "3"), C("EXEC"), Raw2(b"", 2))
case("resp3-subscribe-inside-multi", hello3(), C("MULTI"), C("SUBSCRIBE", "a"), C("EXEC"),
     C2("PUBLISH", "a", "m"), READ)

# --- arity ---------------------------------------------------------------------------------------

for _name in ("SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "PUBLISH", "SPUBLISH"):
    arity(_name)
arity("PUBLISH", "ch")
arity("PUBLISH", "ch", "m", "extra")
arity("SPUBLISH", "ch")
arity("SPUBLISH", "ch", "m", "extra")
arity("PUBSUB")


@pytest.mark.parametrize("seq", CASES, ids=CASES.ids())
def test_same_replies_as_redis(servers: Servers, seq: Case) -> None:  # noqa: F811
    check_case(servers, seq)


def test_kvred_survived_the_cases(servers: Servers) -> None:  # noqa: F811
    check_survived(servers)

