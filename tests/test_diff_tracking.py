"""CLIENT TRACKING (client-side caching) against redis-server 7.0: the same scenario on
both servers, byte for byte: the option errors, TRACKINGINFO/GETREDIR, and the
invalidation messages of the default mode (RESP3 pushes, REDIRECT to a RESP2 client
subscribed to __redis__:invalidate), OPTIN/OPTOUT with CLIENT CACHING, BCAST with
PREFIXes, NOLOOP, expiry and FLUSHALL.

A scenario gets two fresh connections (a: the tracking client, b: another one) and
returns what it saw; client ids differ between the servers, so a scenario that needs
one asks its connection with CLIENT ID and only what the server answers is compared.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from differential import Servers, servers  # noqa: F401  (the fixture)
from rawclient import RawClient, encode_command

Scenario = Callable[[RawClient, RawClient], list[bytes]]


def cmd(conn: RawClient, *args: bytes | str | int) -> bytes:
    conn.send(encode_command(*args))
    return conn.read_reply()


def pushed(conn: RawClient, timeout: float = 1.0) -> bytes:
    """The next message the server sent unasked (or a marker if none came)."""
    try:
        return conn.read_reply(timeout)
    except TimeoutError:
        return b"<nothing>"


def client_id(conn: RawClient) -> int:
    return int(cmd(conn, "CLIENT", "ID")[1:-2])


def option_errors(a: RawClient, b: RawClient) -> list[bytes]:
    out = [cmd(a, "HELLO", "3")[:1]]
    for args in [
        ("maybe",), ("on", "optin", "optout"), ("on", "prefix", "a"), ("on", "bcast", "optin"),
        ("on", "redirect", "999999"), ("on", "redirect", "x"), ("on", "bogus"), ("on", "prefix"),
        ("on", "bcast", "prefix", "ab", "prefix", "a"), ("off", "optin", "optout"),
    ]:
        out.append(cmd(a, "CLIENT", "TRACKING", *args))
    out.append(cmd(a, "CLIENT", "CACHING", "yes"))  # tracking off
    out.append(cmd(a, "CLIENT", "TRACKINGINFO"))
    out.append(cmd(a, "CLIENT", "GETREDIR"))
    out.append(cmd(a, "CLIENT", "TRACKING", "on"))
    out.append(cmd(a, "CLIENT", "CACHING", "yes"))  # on, but not OPTIN
    out.append(cmd(a, "CLIENT", "CACHING", "no"))
    out.append(cmd(a, "CLIENT", "TRACKING", "on", "bcast"))  # switching BCAST while on
    out.append(cmd(a, "CLIENT", "TRACKING", "on", "optin"))
    out.append(cmd(a, "CLIENT", "TRACKING", "on", "optout"))  # switching OPTIN/OPTOUT while on
    out.append(cmd(a, "CLIENT", "CACHING", "maybe"))
    out.append(cmd(a, "CLIENT", "TRACKINGINFO"))
    out.append(cmd(a, "CLIENT", "TRACKING", "off"))
    out.append(cmd(a, "CLIENT", "TRACKING", "on", "bcast", "prefix", "user:", "prefix", "item"))
    out.append(cmd(a, "CLIENT", "TRACKING", "on", "bcast", "prefix", "user:1"))  # overlaps a held one
    out.append(cmd(a, "CLIENT", "TRACKINGINFO"))
    return out


def default_mode(a: RawClient, b: RawClient) -> list[bytes]:
    out = [cmd(a, "HELLO", "3")[:1], cmd(a, "CLIENT", "TRACKING", "on")]
    out += [cmd(a, "GET", "k"), cmd(a, "MGET", "m1", "m2"), cmd(a, "HGET", "h", "f")]
    out.append(cmd(b, "SET", "k", "1"))
    out.append(pushed(a))
    out.append(cmd(b, "SET", "k", "2"))  # not read again since: no second message
    out.append(cmd(a, "PING"))
    out.append(cmd(b, "MSET", "m2", "x", "m1", "y"))
    out += [pushed(a), pushed(a)]
    out.append(cmd(b, "HSET", "h", "f", "v"))
    out.append(pushed(a))
    out.append(cmd(b, "LPUSH", "h", "v"))  # WRONGTYPE: nothing changed, nothing sent
    out.append(cmd(a, "PING"))
    out.append(cmd(a, "GET", "k"))
    out.append(cmd(a, "SET", "k", "mine"))  # its own write invalidates too (no NOLOOP)
    out.append(pushed(a))
    out.append(cmd(a, "GET", "k"))
    out.append(cmd(b, "FLUSHALL"))
    out.append(pushed(a))
    out.append(cmd(a, "CLIENT", "TRACKING", "off"))
    out.append(cmd(a, "GET", "k"))
    out.append(cmd(b, "SET", "k", "3"))
    out.append(cmd(a, "PING"))
    return out


def noloop_and_expiry(a: RawClient, b: RawClient) -> list[bytes]:
    out = [cmd(a, "HELLO", "3")[:1], cmd(a, "CLIENT", "TRACKING", "on", "noloop")]
    out += [cmd(a, "GET", "k"), cmd(a, "SET", "k", "own"), cmd(a, "PING")]  # no message for its own write
    out += [cmd(a, "GET", "k"), cmd(b, "DEL", "k"), pushed(a)]
    out += [cmd(b, "SET", "e", "v", "PX", "30"), cmd(a, "GET", "e")]
    # the key expires; a read from b deletes it lazily: the cached copy is stale
    out.append(b"<expired>" if _wait_gone(b, "e") else b"<still there>")
    out.append(pushed(a))
    return out


def _wait_gone(conn: RawClient, key: str) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if cmd(conn, "EXISTS", key) == b":0\r\n":
            return True
    return False


def optin_optout(a: RawClient, b: RawClient) -> list[bytes]:
    out = [cmd(a, "HELLO", "3")[:1], cmd(a, "CLIENT", "TRACKING", "on", "optin")]
    out += [cmd(a, "GET", "x"), cmd(b, "SET", "x", "1"), cmd(a, "PING")]  # not cached: nothing
    out += [cmd(a, "CLIENT", "CACHING", "yes"), cmd(a, "GET", "x"), cmd(a, "GET", "y")]
    out += [cmd(b, "SET", "y", "1"), cmd(a, "PING"), cmd(b, "SET", "x", "2"), pushed(a)]
    out += [cmd(a, "CLIENT", "TRACKING", "off"), cmd(a, "CLIENT", "TRACKING", "on", "optout")]
    out += [cmd(a, "CLIENT", "CACHING", "no"), cmd(a, "GET", "x"), cmd(a, "GET", "y")]
    out += [cmd(b, "SET", "x", "3"), cmd(a, "PING"), cmd(b, "SET", "y", "2"), pushed(a)]
    return out


def bcast(a: RawClient, b: RawClient) -> list[bytes]:
    out = [cmd(a, "HELLO", "3")[:1], cmd(a, "CLIENT", "TRACKING", "on", "bcast", "prefix", "user:", "noloop")]
    out += [cmd(b, "SET", "user:1", "a"), pushed(a), cmd(b, "SET", "other", "b"), cmd(a, "PING")]
    out += [cmd(b, "MSET", "user:2", "x", "user:3", "y"), pushed(a)]
    out += [cmd(a, "SET", "user:4", "mine"), cmd(a, "PING")]  # NOLOOP
    out += [cmd(a, "CLIENT", "TRACKINGINFO")]
    return out


def redirect_resp2(a: RawClient, b: RawClient) -> list[bytes]:
    target = client_id(b)
    out = [cmd(b, "SUBSCRIBE", "__redis__:invalidate")]
    out += [cmd(a, "CLIENT", "TRACKING", "on", "redirect", target), cmd(a, "GET", "k")]
    out += [cmd(a, "CLIENT", "GETREDIR") == b":%d\r\n" % target and b"<redirect id>" or b"<other id>"]
    out += [cmd(a, "SET", "k", "v"), pushed(b)]
    out += [cmd(a, "GET", "k"), cmd(a, "FLUSHALL"), pushed(b)]
    return out


def redirect_broken(a: RawClient, b: RawClient) -> list[bytes]:
    """The redirect target leaves: the tracking client is told (RESP3) with each message lost."""
    target = client_id(b)
    out = [cmd(a, "HELLO", "3")[:1], cmd(a, "CLIENT", "TRACKING", "on", "redirect", target), cmd(a, "GET", "k")]
    b.close()
    deadline = time.monotonic() + 5
    while b"id=%d " % target in cmd(a, "CLIENT", "LIST"):
        assert time.monotonic() < deadline, "the server did not notice the redirect client leave"
    out += [cmd(a, "CLIENT", "TRACKINGINFO"), cmd(a, "SET", "k", "v"), pushed(a), cmd(a, "CLIENT", "TRACKINGINFO")]
    out += [cmd(a, "GET", "k"), cmd(a, "FLUSHALL"), pushed(a)]
    ids = (b":%d\r\n" % target, b"$%d\r\n%d\r\n" % (len(str(target)), target))
    return [part.replace(ids[0], b":<id>\r\n").replace(ids[1], b"$<id>") for part in out]
    return out


def own_writes(a: RawClient, b: RawClient) -> list[bytes]:
    """A tracking client's own write and FLUSHALL: where its invalidations go in its replies."""
    out = [cmd(a, "HELLO", "3")[:1], cmd(a, "CLIENT", "TRACKING", "on"), cmd(a, "GET", "k")]
    a.send(encode_command("SET", "k", "1") + encode_command("PING"))
    out += [a.read_reply(), a.read_reply(), a.read_reply()]
    a.send(encode_command("FLUSHALL") + encode_command("PING"))
    out += [a.read_reply(), a.read_reply(), a.read_reply()]
    return out


SCENARIOS: dict[str, Scenario] = {
    "option-errors": option_errors,
    "default-mode": default_mode,
    "noloop-and-expiry": noloop_and_expiry,
    "optin-optout": optin_optout,
    "bcast": bcast,
    "redirect-resp2": redirect_resp2,
    "redirect-broken": redirect_broken,
    "own-writes": own_writes,
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_same_as_redis(servers: Servers, name: str) -> None:  # noqa: F811
    seen = {}
    for label, port in (("redis", servers.redis.port), ("kvred", servers.kvred.port)):
        with RawClient(port, timeout=2.0) as a, RawClient(port, timeout=2.0) as b:
            cmd(b, "FLUSHALL")
            seen[label] = SCENARIOS[name](a, b)
    assert seen["kvred"] == seen["redis"]
