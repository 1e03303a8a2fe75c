"""The machinery of the differential tests: the same bytes to redis-server 7.0 and to
kvred, the same replies back (tests/test_differential.py and the per-family files
tests/test_diff_*.py use it).

A case is a sequence of steps run on a fresh connection to each server; it starts with
FLUSHALL so cases are independent. A step's result is the raw reply bytes, except where
a step says how it normalises a value that legitimately differs between the two servers
(ids, versions, ports, dirs, the order of hash-table replies, random picks).
Everything else must be byte-identical. A failure lists every differing step: expected
(redis) vs actual (kvred).

A test module builds its cases with a `Cases` list and runs each with `check_case`,
using the module-scoped `servers` fixture (import it into the module):

    from differential import C, Cases, Servers, check_case, servers  # noqa: F401

    CASES = Cases()
    CASES.case("lpush-basic", C("LPUSH", "l", "a"), C("LRANGE", "l", "0", "-1"))

    @pytest.mark.parametrize("seq", CASES, ids=CASES.ids())
    def test_same_replies_as_redis(servers: Servers, seq: Case) -> None:
        check_case(servers, seq)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import ServerProcess, answers_ping, start_kvred
from rawclient import RawClient, parse_reply

# Redis answers in microseconds; a short bound keeps a hanging kvred from
# stalling the whole module.
READ_TIMEOUT_S = 1.5
# How long a "the server keeps waiting for more bytes" check listens for
# nothing to arrive. Only used where no later command can prove the silence.
SILENCE_S = 0.2


class Ctx:
    """One side of a case: a server, the current connection to it, and a second
    connection (opened by the first `Other` step) for another client's commands."""

    def __init__(self, server: ServerProcess):
        self.server = server
        self.client = RawClient(server.port, timeout=READ_TIMEOUT_S)
        self.other: RawClient | None = None

    def reconnect(self) -> None:
        self.client.close()
        self.client = RawClient(self.server.port, timeout=READ_TIMEOUT_S)

    def second(self) -> RawClient:
        if self.other is None:
            self.other = RawClient(self.server.port, timeout=READ_TIMEOUT_S)
        return self.other

    def close(self) -> None:
        self.client.close()
        if self.other is not None:
            self.other.close()


# --- steps -------------------------------------------------------------------

Norm = Callable[[bytes], Any]


@dataclass
class Cmd:
    """Send one multibulk command; the result is its reply (optionally normalised)."""

    args: tuple[bytes | str | int, ...]
    norm: Norm | None = None

    def run(self, ctx: Ctx) -> Any:
        raw = ctx.client.call(*self.args)
        return self.norm(raw) if self.norm else raw

    def label(self) -> str:
        text = " ".join(a if isinstance(a, str) else repr(a) for a in self.args)
        return text if len(text) < 100 else text[:97] + "..."


def C(*args: bytes | str | int, norm: Norm | None = None) -> Cmd:
    return Cmd(args, norm)


@dataclass
class Other:
    """Run a command on the case's second connection: another client (WATCH tests)."""

    cmd: Cmd

    def run(self, ctx: Ctx) -> Any:
        raw = ctx.second().call(*self.cmd.args)
        return self.cmd.norm(raw) if self.cmd.norm else raw

    def label(self) -> str:
        return "other client: " + self.cmd.label()


def C2(*args: bytes | str | int, norm: Norm | None = None) -> Other:
    """C, on the second connection."""
    return Other(Cmd(args, norm))


@dataclass
class ShutdownInMulti:
    """SHUTDOWN inside MULTI, which must be refused. Guarded so that no server is ever
    stopped: it is sent only once a queued PING proved the connection is in MULTI, and
    if a server queues it anyway the transaction is discarded, never executed."""

    args: tuple[str, ...] = ()

    def run(self, ctx: Ctx) -> Any:
        proof = ctx.client.call("PING")
        if proof != b"+QUEUED\r\n":
            return ("not in MULTI: SHUTDOWN not sent", proof)
        reply = ctx.client.call("SHUTDOWN", *self.args)
        if reply == b"+QUEUED\r\n":
            return ("SHUTDOWN was queued; the transaction was discarded", ctx.client.call("DISCARD"))
        return reply

    def label(self) -> str:
        return "PING, then SHUTDOWN " + " ".join(self.args) + " (in MULTI, guarded)"


@dataclass
class Raw:
    """Send raw bytes, then read `replies` complete replies."""

    data: bytes
    replies: int = 1
    norm: Norm | None = None

    def run(self, ctx: Ctx) -> Any:
        ctx.client.send(self.data)
        replies = [ctx.client.read_reply() for _ in range(self.replies)]
        return [self.norm(r) for r in replies] if self.norm else replies

    def label(self) -> str:
        return f"raw {self.data[:80]!r} ({self.replies} replies)"


@dataclass
class RawClose:
    """Send raw bytes (maybe none), then read everything until the server closes."""

    data: bytes

    def run(self, ctx: Ctx) -> Any:
        if self.data:
            ctx.client.send(self.data)
        return ctx.client.read_until_close(READ_TIMEOUT_S)

    def label(self) -> str:
        return f"raw {self.data[:80]!r} until close"


@dataclass
class Silent:
    """Send raw bytes that must get no reply yet and must not close the connection."""

    data: bytes

    def run(self, ctx: Ctx) -> Any:
        ctx.client.send(self.data)
        return ctx.client.read_available(SILENCE_S), ctx.client.eof

    def label(self) -> str:
        return f"raw {self.data[:80]!r} (expect silence)"


@dataclass
class Closed:
    """The server closes the connection (result: True) or keeps it open (False)."""

    def run(self, ctx: Ctx) -> Any:
        return ctx.client.is_closed(READ_TIMEOUT_S)

    def label(self) -> str:
        return "connection closed?"


@dataclass
class Reconnect:
    def run(self, ctx: Ctx) -> Any:
        ctx.reconnect()
        return None

    def label(self) -> str:
        return "reconnect"


@dataclass
class ScanAll:
    """Iterate SCAN from cursor 0 to 0 with `extra` options; result: sorted key set.

    Why normalised: SCAN's order and page sizes depend on the hash table layout.
    Each page must still be a 2-element array of a bulk cursor and an array.
    """

    extra: tuple[str | bytes, ...] = ()
    max_calls: int = 10_000

    def run(self, ctx: Ctx) -> Any:
        cursor = b"0"
        keys: set[bytes] = set()
        for _ in range(self.max_calls):
            raw = ctx.client.call("SCAN", cursor, *self.extra)
            node = parse_reply(raw)
            if (node[0] != "*" or len(node[1]) != 2 or node[1][0][0] != "$"
                    or node[1][1][0] != "*"):
                return ("unexpected page", raw)
            cursor = node[1][0][1]
            for kind, key in node[1][1][1]:
                if kind != "$":
                    return ("unexpected key type", raw)
                keys.add(key)
            if cursor == b"0":
                return ("keys", sorted(keys))
        return ("SCAN did not finish", len(keys))

    def label(self) -> str:
        return "SCAN to completion " + " ".join(repr(a) if isinstance(a, bytes) else a for a in self.extra)


@dataclass
class Case:
    id: str
    steps: list[Any] = field(default_factory=list)
    # run on a fresh connection after the steps, whatever happened (server-wide settings)
    cleanup: list[Any] = field(default_factory=list)


# --- normalisers ---------------------------------------------------------------


def sorted_keys(raw: bytes) -> Any:
    """KEYS: same array of bulk strings, compared in sorted order (hash order differs)."""
    node = parse_reply(raw)
    if node[0] != "*":
        return raw
    return ("* sorted", sorted(node[1]))


def one_of(*keys: str) -> Norm:
    """RANDOMKEY among several keys: which one is random; it must be one of them."""
    wanted = {k.encode() for k in keys}

    def norm(raw: bytes) -> Any:
        node = parse_reply(raw)
        if node[0] == "$" and node[1] in wanted:
            return "<a bulk string naming one of the keys>"
        return raw

    return norm


def int_range(low: int, high: int) -> Norm:
    """A PTTL (or TTL) that depends on when it ran: an integer within [low, high]."""

    def norm(raw: bytes) -> Any:
        match = re.fullmatch(rb":(-?\d+)\r\n", raw)
        if match and low <= int(match[1]) <= high:
            return f"<integer in [{low}, {high}]>"
        return raw

    return norm


def idle_time(raw: bytes) -> Any:
    """OBJECT IDLETIME right after an access: 0, or 1 if a second boundary of the LRU
    clock passed in between."""
    return int_range(0, 1)(raw)


def info_fields(*names: str) -> Norm:
    """INFO: only the named fields' lines (the others differ or depend on history)."""
    wanted = tuple(f"{name}:".encode() for name in names)

    def norm(raw: bytes) -> Any:
        node = parse_reply(raw)
        if node[0] not in "$=":
            return raw
        return [line for line in node[1].split(b"\r\n") if line.startswith(wanted)]

    return norm


def info_keyspace(raw: bytes) -> Any:
    """INFO keyspace: the dbN lines with avg_ttl masked (an estimate the active expire
    cycle updates whenever it samples keys)."""
    node = parse_reply(raw)
    if node[0] not in "$=":
        return raw
    return re.sub(rb"avg_ttl=\d+", b"avg_ttl=<n>", node[1])


def integer(raw: bytes) -> Any:
    """COMMAND COUNT: the count differs (kvred has fewer commands); it must be an integer."""
    return "<integer reply>" if re.fullmatch(rb":\d+\r\n", raw) else raw


_HELLO_ID = re.compile(rb"(\$2\r\nid\r\n):\d+\r\n")
_HELLO_VERSION = re.compile(rb"(\$7\r\nversion\r\n)\$\d+\r\n[^\r\n]*\r\n")


def hello_masked(raw: bytes) -> Any:
    """HELLO: the client id and the server version differ; mask only those values."""
    raw = _HELLO_ID.sub(rb"\1<ID>", raw)
    return _HELLO_VERSION.sub(rb"\1<VERSION>", raw)


def config_keys(raw: bytes) -> Any:
    """CONFIG GET: values such as port and dir differ, so compare the reply type
    and the sorted parameter names only (RESP2 flat array or RESP3 map)."""
    node = parse_reply(raw)
    if node[0] == "*":
        items = node[1]
        return ("*", len(items) % 2, sorted(items[0::2]))
    if node[0] == "%":
        return ("%", sorted(k for k, _ in node[1]))
    return raw



class Cases(list["Case"]):
    """A module's cases, in order."""

    def case(self, id: str, *steps: Any) -> None:
        self.append(Case(id, [C("FLUSHALL"), *steps]))

    def lazy_case(self, id: str, *steps: Any) -> None:
        """A case where expired keys must be removed lazily, by the commands that meet them:
        the active expire cycle is off during the steps and back on afterwards, always."""
        on = C("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        self.append(Case(id, [C("FLUSHALL"), C("DEBUG", "SET-ACTIVE-EXPIRE", "0"), *steps, on], [on]))

    def arity(self, name: str, *args: str) -> None:
        """One wrong-arity command; the text names the command in lowercase."""
        self.case(f"arity-{name.lower()}-{len(args)}args", C(name, *args))

    def ids(self) -> list[str]:
        return [c.id for c in self]


# --- running cases ---------------------------------------------------------------


class Servers:
    """The oracle and kvred. A kvred that dies during a case (which that case
    reports) is restarted before the next one, so one crash does not fail
    every later case; the crashes are counted and reported at the end."""

    def __init__(self, redis_server: ServerProcess, kvred: ServerProcess):
        self.redis = redis_server
        self.kvred = kvred
        self.crashes: list[str] = []

    def ensure_kvred_alive(self, case_id: str) -> None:
        proc = self.kvred.proc
        if proc is not None and proc.poll() is None and answers_ping(self.kvred.port, 1.0):
            return
        code = self.kvred.stop()
        self.crashes.append(f"kvred was down (exit code {code}) after the case before "
                            f"{case_id!r}")
        self.kvred = start_kvred(self.kvred.dir, track_key_access="yes")


@pytest.fixture(scope="module")
def servers(redis_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Servers]:
    # key access times on, so that OBJECT IDLETIME compares (test_idletime_needs_tracking: off)
    pair = Servers(redis_server, start_kvred(tmp_path_factory.mktemp("kvred"), track_key_access="yes"))
    try:
        yield pair
    finally:
        pair.kvred.stop()


def _run_step(step: Any, ctx: Ctx) -> tuple[Any, bool]:
    """(result, ok). A timeout or an unexpected close ends the case on that side."""
    try:
        return step.run(ctx), True
    except TimeoutError as e:
        return f"<timeout after {READ_TIMEOUT_S} s: {e}>", False
    except (ConnectionError, OSError, ValueError) as e:
        return f"<{type(e).__name__}: {e}>", False


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def _cleanup(servers: Servers, seq: Case) -> None:
    """Best effort, on fresh connections: a case's server-wide settings are restored."""
    if not seq.cleanup:
        return
    for server in (servers.redis, servers.kvred):
        try:
            side = Ctx(server)
        except OSError:
            continue
        try:
            for step in seq.cleanup:
                _run_step(step, side)
        finally:
            side.close()


def _compare(redis_server: ServerProcess, kvred: ServerProcess, steps: list[Any]) -> list[str]:
    """Run the steps on both servers, one step on each in turn; the differing steps."""
    redis_side, kvred_side = Ctx(redis_server), Ctx(kvred)
    mismatches = []
    try:
        for index, step in enumerate(steps):
            expected, redis_ok = _run_step(step, redis_side)
            assert redis_ok, f"the oracle failed at step {index} {step.label()}: {expected}"
            actual, kvred_ok = _run_step(step, kvred_side)
            if expected != actual:
                mismatches.append(f"step {index} [{step.label()}]\n"
                                  f"    redis: {_short(expected)}\n"
                                  f"    kvred: {_short(actual)}")
            if not kvred_ok:
                break
    finally:
        redis_side.close()
        kvred_side.close()
    return mismatches


def check_case(servers: Servers, seq: Case) -> None:
    """Run one case on both servers; fail with every differing step."""
    servers.ensure_kvred_alive(seq.id)
    try:
        mismatches = _compare(servers.redis, servers.kvred, seq.steps)
    finally:
        _cleanup(servers, seq)
    assert not mismatches, f"{len(mismatches)} differing step(s):\n" + "\n".join(mismatches)


def check_survived(servers: Servers) -> None:
    """After a module's cases: no input may have crashed a kvred process."""
    servers.ensure_kvred_alive("(end of module)")
    log = servers.kvred.log_path.read_text(errors="replace")
    assert not servers.crashes, "\n".join(servers.crashes) + "\n--- log tail ---\n" + log[-4000:]
    assert "Traceback" not in log, log[-4000:]
