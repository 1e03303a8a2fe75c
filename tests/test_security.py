"""Security: AUTH / HELLO AUTH / RESET, the limits before AUTH, protected mode, the links.

What kvred documents (README "Security", kvred/config.py, kvred/connection.py): `--requirepass PW`
(or env KVRED_PASSWORD) makes every command but AUTH/HELLO/QUIT/RESET answer
NOAUTH until `AUTH pw`, `AUTH default pw` or `HELLO <v> AUTH default pw`;
before AUTH a request may have at most 10 arguments of at most 16384 bytes;
RESET de-authenticates; `--protected-mode yes` (the default) without a password
refuses clients whose peer is not loopback with Redis's DENIED text; the
worker<->writer links are socketpairs with no filesystem path.

Every byte-level expectation is checked against redis-server 7.0.15 started
with the same password (the oracle): each case runs on a fresh connection to
both servers and the replies must be identical (only HELLO's client id is
masked). The protected-mode test needs a non-loopback source address that
exists only on this machine: it creates a network namespace joined to the
host by a veth pair, with addresses from a documentation range (TEST-NET-1,
-2 or -3, whichever this host does not already use), and runs the client
inside the namespace. Everything else talks to 127.0.0.1 / ::1 only.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from conftest import ServerProcess, against_redis, require_tool
from oracle import Servers, kvred_tree
from rawclient import RawClient, encode_command
from redis.backoff import NoBackoff
from redis.retry import Retry

PASSWORD = "s3cret-Pw_" + secrets.token_hex(4)
REPLY_TIMEOUT_S = 3.0
EXTRA_BYTES_WAIT_S = 0.05  # after the expected replies: anything more would be a bug
CLI_TIMEOUT_S = 15.0
BENCHMARK_TIMEOUT_S = 60.0
NETNS_CLIENT_TIMEOUT_S = 20.0

NOAUTH = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
HELLO_NOAUTH = (
    b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH "
    b"<user> <pass> option can be used to authenticate the client and select the RESP protocol version "
    b"at the same time\r\n"
)
# redis-server 7.0.15's text, byte for byte (networking.c, acceptCommonHandler)
DENIED = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set "
    b"for the default user. In this mode connections are only accepted from the loopback interface. If you "
    b"want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just "
    b"disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by "
    b"connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly "
    b"accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively "
    b"you can just disable the protected mode by editing the Redis configuration file, and setting the protected "
    b"mode option to 'no', and then restarting the server. 3) If you started the server manually just for "
    b"testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the "
    b"default user. NOTE: You only need to do one of the above things in order for the server to start accepting "
    b"connections from the outside.\r\n"
)


# ---------------------------------------------------------------- fixtures


@dataclass
class Pair:
    kvred: ServerProcess
    redis: ServerProcess


@pytest.fixture(scope="module")
def module_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    servers = Servers(tmp_path_factory.mktemp("security"))
    try:
        yield servers
    finally:
        servers.stop_all()


@pytest.fixture(scope="module")
def with_password(module_servers: Servers) -> Pair:
    """kvred and the redis-server oracle, both with --requirepass PASSWORD."""
    return Pair(module_servers.start("kvred", requirepass=PASSWORD, loglevel="notice"),
                module_servers.start("redis", requirepass=PASSWORD))


@pytest.fixture(scope="module")
def without_password(module_servers: Servers) -> Pair:
    return Pair(module_servers.start("kvred"), module_servers.start("redis"))


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    started = Servers(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


# ---------------------------------------------------------------- differential cases


@dataclass
class Step:
    """Send `data`; expect `replies` replies; `closes`: the server then closes the connection."""

    data: bytes
    replies: int = 1
    closes: bool = False


def S(*args: bytes | str | int, replies: int = 1, closes: bool = False) -> Step:
    return Step(encode_command(*args), replies, closes)


def R(data: bytes, replies: int = 1, closes: bool = False) -> Step:
    return Step(data, replies, closes)


_HELLO_ID = re.compile(rb"(\$2\r\nid\r\n):\d+\r\n")


def _mask(reply: bytes) -> bytes:
    return _HELLO_ID.sub(rb"\1:<id>\r\n", reply)


def run_case(port: int, steps: list[Step]) -> list[object]:
    """Run the steps on a fresh connection; the transcript, with HELLO ids masked."""
    transcript: list[object] = []
    with RawClient(port, timeout=REPLY_TIMEOUT_S) as c:
        for i, step in enumerate(steps):
            try:
                c.send(step.data)
            except OSError as exc:
                transcript.append(f"step {i}: send failed: {type(exc).__name__}")
                return transcript
            for _ in range(step.replies):
                try:
                    transcript.append(_mask(c.read_reply()))
                except ConnectionError:
                    transcript.append(f"step {i}: closed before the reply")
                    return transcript
                except TimeoutError:
                    transcript.append(f"step {i}: no reply in {REPLY_TIMEOUT_S} s")
                    return transcript
            if step.closes:
                closed = c.is_closed(timeout=REPLY_TIMEOUT_S)
                extra = c.buf
                transcript.append(f"step {i}: closed={closed} extra={extra[:100]!r}")
                if closed:
                    return transcript
        extra = c.read_available(EXTRA_BYTES_WAIT_S)
        transcript.append(f"end: extra={extra[:200]!r} closed={c.eof}")
    return transcript


P = PASSWORD
BIG = "x" * 20000
ECHO_12 = ["ECHO"] * 12

PASSWORD_CASES: dict[str, list[Step]] = {
    # before AUTH
    "noauth-get": [S("GET", "k")],
    "noauth-set": [S("SET", "k", "v"), S("GET", "k")],
    "noauth-unknown-command-first": [S("NOSUCH", "x")],
    "noauth-arity-first": [S("GET")],
    "noauth-inline-ping": [R(b"PING\r\n")],
    "noauth-multi-exec": [S("MULTI"), S("EXEC")],
    "noauth-config-get": [S("CONFIG", "GET", "requirepass")],
    "noauth-pipeline": [R(encode_command("PING") * 3 + b"GET k\r\n", replies=4)],
    # AUTH
    "auth-wrong": [S("AUTH", "bad"), S("GET", "k")],
    "auth-wrong-empty": [S("AUTH", "")],
    "auth-case-of-password-matters": [S("AUTH", P.upper())],
    "auth-prefix-of-password": [S("AUTH", P[:-1])],
    "auth-default-wrong": [S("AUTH", "default", "bad")],
    "auth-unknown-user": [S("AUTH", "nouser", P)],
    "auth-syntax": [S("AUTH", "a", "b", "c")],
    "auth-arity": [S("AUTH")],
    "auth-ok": [S("AUTH", P), S("SET", "sec:k", "v"), S("GET", "sec:k")],
    "auth-lowercase-command": [S("auth", P), S("PING")],
    "auth-inline": [R(f"AUTH {P}\r\nGET sec:k\r\n".encode(), replies=2)],
    "auth-default-ok": [S("AUTH", "default", P), S("PING")],
    "auth-pipelined-with-commands": [R(encode_command("GET", "k") + encode_command("AUTH", P)
                                       + encode_command("PING"), replies=3)],
    "auth-then-wrong-keeps-session": [S("AUTH", P), S("AUTH", "bad"), S("GET", "sec:none")],
    "auth-twice": [S("AUTH", P), S("AUTH", "default", P), S("PING")],
    "auth-inside-multi": [S("AUTH", P), S("MULTI"), S("AUTH", P), S("EXEC")],
    # HELLO
    "hello-noauth": [S("HELLO"), S("HELLO", "2"), S("HELLO", "3")],
    "hello-noauth-bad-version": [S("HELLO", "4")],
    "hello-noauth-version-not-integer": [S("HELLO", "abc")],
    "hello-noauth-bad-option": [S("HELLO", "3", "FOO")],
    "hello-noauth-bad-setname": [S("HELLO", "3", "SETNAME", "a b")],
    "hello-noauth-setname": [S("HELLO", "3", "SETNAME", "nm"), S("GET", "k")],
    "hello-auth-wrong": [S("HELLO", "3", "AUTH", "default", "bad"), S("GET", "k")],
    "hello-auth-unknown-user": [S("HELLO", "3", "AUTH", "bob", P)],
    "hello-auth-missing-password": [S("HELLO", "3", "AUTH", "default")],
    "hello3-auth-ok": [S("HELLO", "3", "AUTH", "default", P), S("GET", "sec:none"), S("SET", "sec:h", "1"),
                       S("GET", "sec:h")],
    "hello2-auth-ok": [S("HELLO", "2", "AUTH", "default", P), S("GET", "sec:none")],
    "hello-auth-lowercase": [S("hello", "3", "auth", "default", P), S("PING")],
    "hello-auth-and-setname": [S("HELLO", "3", "AUTH", "default", P, "SETNAME", "nm"), S("CLIENT", "GETNAME")],
    "hello-auth-ok-then-wrong": [S("HELLO", "3", "AUTH", "default", P, "AUTH", "default", "bad"), S("GET", "k")],
    "hello-after-auth": [S("AUTH", P), S("HELLO", "3"), S("GET", "sec:none")],
    # QUIT and RESET
    "quit-before-auth": [S("QUIT", closes=True)],
    "reset-before-auth": [S("RESET"), S("GET", "k")],
    "reset-deauthenticates": [S("AUTH", P), S("SET", "sec:r", "v"), S("RESET"), S("GET", "sec:r"),
                              S("AUTH", P), S("GET", "sec:r")],
    "reset-after-hello3-auth": [S("HELLO", "3", "AUTH", "default", P), S("RESET"), S("GET", "k"), S("HELLO"),
                                S("PING")],
    "reset-in-multi": [S("AUTH", P), S("MULTI"), S("SET", "sec:m", "v"), S("RESET"), S("EXEC")],
    # CONFIG GET requirepass (after AUTH)
    "config-get-requirepass": [S("AUTH", P), S("CONFIG", "GET", "requirepass")],
    # the request limits before AUTH
    "unauth-10-args-ok": [S(*(["ECHO"] * 10))],
    "unauth-11-args": [R(encode_command(*(["ECHO"] * 11)), closes=True)],
    "unauth-11-count-line-only": [R(b"*11\r\n", closes=True)],
    "unauth-huge-count": [R(b"*1000000\r\n", closes=True)],
    "unauth-count-over-int-max": [R(b"*2147483648\r\n", closes=True)],
    "unauth-bulk-16384-ok": [S("ECHO", "y" * 16384)],
    "unauth-bulk-16385": [R(encode_command("ECHO", "y" * 16385), closes=True)],
    "unauth-bulk-header-only": [R(b"*2\r\n$4\r\nECHO\r\n$16385\r\n", closes=True)],
    "unauth-replies-before-the-error": [R(encode_command("GET", "k") + encode_command("PING")
                                          + b"*11\r\n", replies=3, closes=True)],
    "unauth-inline-many-args": [R(b"PING " + b" ".join([b"a"] * 15) + b"\r\n")],
    "unauth-inline-long-arg": [R(b"PING " + b"z" * 20000 + b"\r\n")],
    "auth-then-big-arg-in-the-same-write": [R(encode_command("AUTH", P) + encode_command("ECHO", BIG), replies=2)],
    "auth-then-many-args-in-the-same-write": [R(encode_command("AUTH", P) + encode_command(*ECHO_12), replies=2)],
    "auth-then-big-arg": [S("AUTH", P), S("ECHO", BIG), S(*ECHO_12)],
    "auth-reset-then-big-arg": [S("AUTH", P), S("RESET"), R(encode_command("ECHO", BIG), closes=True)],
    "wrong-auth-then-big-arg": [S("AUTH", "bad"), R(encode_command("ECHO", BIG), closes=True)],
}

NO_PASSWORD_CASES: dict[str, list[Step]] = {
    "auth-without-password": [S("AUTH", "x")],
    "auth-default-any-password": [S("AUTH", "default", "x")],
    "auth-other-user": [S("AUTH", "someone", "x")],
    "hello-auth-default-any-password": [S("HELLO", "3", "AUTH", "default", "x"), S("GET", "k")],
    "hello-auth-other-user": [S("HELLO", "3", "AUTH", "someone", "x")],
    "config-get-requirepass-empty": [S("CONFIG", "GET", "requirepass")],
    "reset-keeps-access": [S("RESET"), S("GET", "sec:none")],
    "no-request-limits": [S(*ECHO_12), S("ECHO", BIG)],
    "hello-without-auth": [S("HELLO", "3"), S("GET", "sec:none")],
}


def _assert_same(case_id: str, kvred: list[object], oracle: list[object]) -> None:
    if kvred == oracle:
        return
    lines = [f"case {case_id}: kvred differs from redis-server 7.0.15"]
    for i in range(max(len(kvred), len(oracle))):
        a = oracle[i] if i < len(oracle) else "<nothing>"
        b = kvred[i] if i < len(kvred) else "<nothing>"
        mark = "  " if a == b else "!!"
        lines.append(f"{mark} [{i}] redis: {a!r:.300}\n{mark}     kvred: {b!r:.300}")
    pytest.fail("\n".join(lines))


@pytest.mark.parametrize("case_id", list(PASSWORD_CASES))
def test_with_password_same_bytes_as_redis(with_password: Pair, case_id: str) -> None:
    steps = PASSWORD_CASES[case_id]
    _assert_same(case_id, run_case(with_password.kvred.port, steps), run_case(with_password.redis.port, steps))


@pytest.mark.parametrize("case_id", list(NO_PASSWORD_CASES))
def test_without_password_same_bytes_as_redis(without_password: Pair, case_id: str) -> None:
    steps = NO_PASSWORD_CASES[case_id]
    _assert_same(case_id, run_case(without_password.kvred.port, steps),
                 run_case(without_password.redis.port, steps))


def test_the_documented_texts(with_password: Pair) -> None:
    """Independently of the oracle: the exact texts the brief documents."""
    with RawClient(with_password.kvred.port) as c:
        assert c.call("GET", "k") == NOAUTH
        assert c.call("HELLO", "3") == HELLO_NOAUTH
        assert c.call("AUTH", "wrong") == WRONGPASS
        assert c.call("AUTH", P) == b"+OK\r\n"
        assert c.call("CONFIG", "GET", "requirepass") == (
            b"*2\r\n$11\r\nrequirepass\r\n$%d\r\n%s\r\n" % (len(P), P.encode()))
    with RawClient(with_password.kvred.port) as c:
        c.send(encode_command(*(["ECHO"] * 11)))
        data, closed = c.read_until_close(REPLY_TIMEOUT_S)
        assert (data, closed) == (b"-ERR Protocol error: unauthenticated multibulk length\r\n", True)
    with RawClient(with_password.kvred.port) as c:
        c.send(b"*2\r\n$4\r\nECHO\r\n$16385\r\n")
        data, closed = c.read_until_close(REPLY_TIMEOUT_S)
        assert (data, closed) == (b"-ERR Protocol error: unauthenticated bulk length\r\n", True)


def test_resp3_session_and_reset(with_password: Pair) -> None:
    """HELLO 3 AUTH: RESP3 replies (null is `_`); RESET: back to RESP2 and unauthenticated."""
    with RawClient(with_password.kvred.port) as c:
        hello = c.call("HELLO", "3", "AUTH", "default", P)
        assert hello.startswith(b"%7\r\n"), hello
        assert b"$5\r\nproto\r\n:3\r\n" in hello, hello
        assert c.call("GET", "sec:missing") == b"_\r\n"
        assert c.call("SET", "sec:resp3", "v") == b"+OK\r\n"
        assert c.call("GET", "sec:resp3") == b"$1\r\nv\r\n"
        assert c.call("RESET") == b"+RESET\r\n"
        assert c.call("GET", "sec:resp3") == NOAUTH
        assert c.call("HELLO") == HELLO_NOAUTH
        assert c.call("AUTH", "default", P) == b"+OK\r\n"
        assert c.call("GET", "sec:missing") == b"$-1\r\n"  # RESP2 again


# ---------------------------------------------------------------- real clients


def _cli(server: ServerProcess, *args: str, env_extra: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    exe = require_tool("redis-cli")
    env = dict(os.environ)
    env.pop("REDISCLI_AUTH", None)
    env.update(env_extra or {})
    result = subprocess.run([exe, "-h", "127.0.0.1", "-p", str(server.port), *args], capture_output=True,
                            stdin=subprocess.DEVNULL, timeout=CLI_TIMEOUT_S, env=env, check=False)
    return result.returncode, result.stdout, result.stderr


CLI_CASES: dict[str, tuple[list[str], dict[str, str]]] = {
    "a-set": (["-a", P, "--no-auth-warning", "SET", "sec:cli", "v"], {}),
    "a-get": (["-a", P, "--no-auth-warning", "GET", "sec:cli"], {}),
    "a-resp3": (["-3", "-a", P, "--no-auth-warning", "GET", "sec:cli"], {}),
    "a-resp3-nil": (["-3", "-a", P, "--no-auth-warning", "GET", "sec:cli-none"], {}),
    "user-and-a": (["--user", "default", "--pass", P, "--no-auth-warning", "PING"], {}),
    "env-REDISCLI_AUTH": (["PING"], {"REDISCLI_AUTH": P}),
    "no-a": (["GET", "sec:cli"], {}),
    "wrong-a": (["-a", "wrong", "--no-auth-warning", "PING"], {}),
    "wrong-a-resp3": (["-3", "-a", "wrong", "--no-auth-warning", "PING"], {}),
    "a-with-warning": (["-a", P, "PING"], {}),
}


@pytest.mark.parametrize("case_id", list(CLI_CASES))
def test_redis_cli_password(with_password: Pair, case_id: str) -> None:
    args, env = CLI_CASES[case_id]
    if case_id == "a-get" or case_id.startswith("a-resp3"):
        for server in (with_password.kvred, with_password.redis):
            assert _cli(server, "-a", P, "--no-auth-warning", "SET", "sec:cli", "v")[0] == 0
    got = _cli(with_password.kvred, *args, env_extra=env)
    expected = _cli(with_password.redis, *args, env_extra=env)
    assert got == expected, f"redis-cli {args}: kvred {got!r}, redis-server {expected!r}"


def test_redis_cli_password_values(with_password: Pair) -> None:
    assert _cli(with_password.kvred, "-a", P, "--no-auth-warning", "SET", "sec:cli2", "v2") == (0, b"OK\n", b"")
    assert _cli(with_password.kvred, "-a", P, "--no-auth-warning", "GET", "sec:cli2") == (0, b"v2\n", b"")
    _code, out, _err = _cli(with_password.kvred, "GET", "sec:cli2")
    assert out.startswith(b"NOAUTH Authentication required.\n"), out


def _py(port: int, protocol: int, **kwargs: object) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, protocol=protocol, socket_timeout=5,
                       single_connection_client=True, retry=Retry(NoBackoff(), 0), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_password(with_password: Pair, protocol: int) -> None:
    port = with_password.kvred.port
    with _py(port, protocol, password=P) as r:
        assert r.set("sec:py", "v") is True
        assert r.get("sec:py") == b"v"
        assert r.get("sec:py-none") is None
        assert r.config_get("requirepass") == {"requirepass": P}
    with _py(port, protocol, username="default", password=P) as r:
        assert r.get("sec:py") == b"v"
    # Same failures, same exception types as with redis-server.
    for kwargs in ({"password": "wrong"}, {"username": "bob", "password": P}, {}):
        outcomes = []
        for server in (with_password.kvred, with_password.redis):
            try:
                with _py(server.port, protocol, **kwargs) as r:
                    r.get("sec:py")
                outcomes.append("ok")
            except redis.RedisError as exc:
                outcomes.append(f"{type(exc).__name__}: {exc}")
        assert outcomes[0] == outcomes[1], f"{kwargs}: kvred {outcomes[0]!r}, redis-server {outcomes[1]!r}"
        assert outcomes[0] != "ok", kwargs


def _benchmark(server: ServerProcess, *args: str) -> tuple[int, str]:
    exe = require_tool("redis-benchmark")
    result = subprocess.run([exe, "-h", "127.0.0.1", "-p", str(server.port), "-t", "set,get", "-n", "2000",
                             "-c", "5", "-q", *args], capture_output=True, stdin=subprocess.DEVNULL,
                            timeout=BENCHMARK_TIMEOUT_S, check=False)
    return result.returncode, (result.stdout + result.stderr).decode(errors="replace")


def test_redis_benchmark_password(with_password: Pair) -> None:
    code, output = _benchmark(with_password.kvred, "-a", P)
    assert code == 0, output
    assert "WARNING" not in output, output
    assert "error" not in output.lower(), output
    assert "SET: " in output and "GET: " in output, output
    # Without -a it gives up, as against Redis.
    code, output = _benchmark(with_password.kvred)
    oracle_code, oracle_output = _benchmark(with_password.redis)
    assert oracle_code != 0, oracle_output
    assert code != 0, f"redis-benchmark without -a exited 0 against a passworded kvred:\n{output}"
    assert "NOAUTH Authentication required." in output, output
    assert output.replace(str(with_password.kvred.port), "PORT") == (
        oracle_output.replace(str(with_password.redis.port), "PORT"))


def test_password_from_the_environment(servers: Servers) -> None:
    env_password = "env-" + secrets.token_hex(6)
    server = servers.start("kvred", env_extra={"KVRED_PASSWORD": env_password}, loglevel="notice")
    with RawClient(server.port) as c:
        assert c.call("GET", "k") == NOAUTH
        assert c.call("AUTH", P) == WRONGPASS
        assert c.call("AUTH", env_password) == b"+OK\r\n"
        assert c.call("CONFIG", "GET", "requirepass") == (
            b"*2\r\n$11\r\nrequirepass\r\n$%d\r\n%s\r\n" % (len(env_password), env_password.encode()))
    # a flag wins over the environment
    flagged = servers.start("kvred", env_extra={"KVRED_PASSWORD": env_password}, requirepass=P)
    with RawClient(flagged.port) as c:
        assert c.call("AUTH", env_password) == WRONGPASS
        assert c.call("AUTH", P) == b"+OK\r\n"


def test_password_never_logged(with_password: Pair) -> None:
    """Failed and good AUTHs (even at loglevel notice) leave no trace of a password in the log."""
    with RawClient(with_password.kvred.port) as c:
        assert c.call("AUTH", "guess-" + P[:6]) == WRONGPASS
        assert c.call("AUTH", P) == b"+OK\r\n"
    text = with_password.kvred.log_path.read_bytes()
    assert P.encode() not in text
    assert P[:6].encode() not in text


# ---------------------------------------------------------------- protected mode


NETNS_CLIENT = r"""
import json, socket, sys, time
host, port, steps = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
deadline_s = 5.0
out = {"replies": [], "closed": False, "rest": "", "local": ""}
s = socket.create_connection((host, port), timeout=deadline_s)
out["local"] = s.getsockname()[0]
buf = b""
def recv(timeout):
    global buf
    s.settimeout(max(timeout, 0.001))
    try:
        chunk = s.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        chunk = b""
    except (TimeoutError, socket.timeout):
        return True
    if not chunk:
        out["closed"] = True
        return False
    buf += chunk
    return True
for step in steps:
    if step == "<read-until-close>":
        end = time.monotonic() + deadline_s
        while not out["closed"] and time.monotonic() < end:
            recv(end - time.monotonic())
        break
    s.sendall(step.encode() + b"\r\n")
    end = time.monotonic() + deadline_s
    while b"\r\n" not in buf and not out["closed"] and time.monotonic() < end:
        recv(end - time.monotonic())
    line, sep, buf = buf.partition(b"\r\n")
    out["replies"].append((line + sep).hex())
    if out["closed"]:
        break
out["rest"] = buf.hex()
print(json.dumps(out))
"""

DOC_NETS = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")  # TEST-NET-1, -2, -3 (RFC 5737)


def _used_ipv4_networks() -> list[ipaddress.IPv4Network]:
    """Networks of this host's IPv4 addresses and of its non-default routes."""
    nets = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and a.netmask:
                nets.append(ipaddress.IPv4Network(f"{a.address}/{a.netmask}", strict=False))
    try:
        with open("/proc/net/route") as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                dest, mask = int(fields[1], 16), int(fields[7], 16)
                if mask:
                    nets.append(ipaddress.IPv4Network(
                        (socket.inet_ntoa(dest.to_bytes(4, "little")), socket.inet_ntoa(mask.to_bytes(4, "little")))))
                gateway = int(fields[2], 16)
                if gateway:
                    nets.append(ipaddress.IPv4Network(socket.inet_ntoa(gateway.to_bytes(4, "little")) + "/32"))
    except OSError:
        pass
    return nets


def _pick_doc_network() -> ipaddress.IPv4Network | None:
    used = _used_ipv4_networks()
    for text in DOC_NETS:
        net = ipaddress.IPv4Network(text)
        if not any(net.overlaps(u) for u in used):
            return net
    return None


def _cannot(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False,
                            stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: exit {result.returncode}: {result.stderr.strip()}")
    return result


class Netns:
    """A network namespace joined to the host by a veth pair, torn down in `close()`."""

    def __init__(self) -> None:
        tag = secrets.token_hex(4)
        self.name = f"kvredtest-{tag}"
        self.host_if = f"kvh{tag[:6]}"
        self.ns_if = f"kvn{tag[:6]}"
        self.created_ns = False
        self.created_link = False
        self.host_addr = self.ns_addr = ""

    def setup(self, net: ipaddress.IPv4Network) -> None:
        hosts = list(net.hosts())
        self.host_addr, self.ns_addr = str(hosts[0]), str(hosts[1])
        prefix = f"/{net.prefixlen}"
        _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        self.created_link = True
        _ip("link", "set", self.ns_if, "netns", self.name)
        _ip("addr", "add", self.host_addr + prefix, "dev", self.host_if)
        _ip("link", "set", self.host_if, "up")
        _ip("netns", "exec", self.name, "ip", "addr", "add", self.ns_addr + prefix, "dev", self.ns_if)
        _ip("netns", "exec", self.name, "ip", "link", "set", self.ns_if, "up")
        _ip("netns", "exec", self.name, "ip", "link", "set", "lo", "up")

    def client(self, port: int, steps: list[str]) -> dict[str, object]:
        """Run the client script inside the namespace against host_addr:port."""
        result = subprocess.run(["ip", "netns", "exec", self.name, sys.executable, "-c", NETNS_CLIENT,
                                 self.host_addr, str(port), json.dumps(steps)],
                                capture_output=True, text=True, timeout=NETNS_CLIENT_TIMEOUT_S,
                                stdin=subprocess.DEVNULL, check=False)
        assert result.returncode == 0, f"netns client failed: {result.stderr[-2000:]}"
        raw: dict[str, Any] = json.loads(result.stdout)
        out: dict[str, object] = dict(raw)
        out["replies"] = [bytes.fromhex(h) for h in raw["replies"]]
        out["rest"] = bytes.fromhex(raw["rest"])
        return out

    def close(self) -> None:
        if self.created_link:
            _ip("link", "del", self.host_if, check=False)  # deletes both ends
        if self.created_ns:
            _ip("netns", "del", self.name, check=False)


def test_protected_mode_from_a_non_loopback_address(servers: Servers) -> None:
    require_tool("ip")
    if os.geteuid() != 0:
        _cannot("network namespaces need root")
    net = _pick_doc_network()
    if net is None:
        _cannot(f"every documentation network {DOC_NETS} is already used on this host")
    assert net is not None
    ns = Netns()
    probe = _ip("netns", "add", ns.name, check=False)
    if probe.returncode != 0:
        _cannot(f"'ip netns add' is not permitted here: {probe.stderr.strip()}")
    ns.created_ns = True
    try:
        ns.setup(net)
        # Protected mode on (the default), no password, listening everywhere.
        open_kvred = servers.start("kvred", bind="0.0.0.0 ::1")
        oracle = servers.start("redis", bind="0.0.0.0")
        denied = ns.client(open_kvred.port, ["<read-until-close>"])
        assert denied["local"] == ns.ns_addr and not ipaddress.ip_address(ns.ns_addr).is_loopback
        assert denied["rest"] == DENIED and denied["closed"], (
            f"kvred: {denied['rest']!r:.300} closed={denied['closed']}")
        from_redis = ns.client(oracle.port, ["<read-until-close>"])
        assert from_redis["rest"] == DENIED and from_redis["closed"], from_redis
        # Same answer when the client speaks first.
        denied_ping = ns.client(open_kvred.port, ["PING", "<read-until-close>"])
        assert denied_ping["replies"] == [DENIED] and denied_ping["closed"], denied_ping
        # Loopback clients (v4 and v6) are still served.
        for host in ("127.0.0.1", "::1"):
            with RawClient(open_kvred.port, host=host) as c:
                assert c.call("PING") == b"+PONG\r\n", host

        # With a password: NOAUTH (never DENIED), and AUTH works from outside.
        guarded = servers.start("kvred", bind="0.0.0.0", requirepass=P)
        out = ns.client(guarded.port, ["PING", f"AUTH {P}", "PING"])
        assert out["replies"] == [NOAUTH, b"+OK\r\n", b"+PONG\r\n"] and not out["closed"], out

        # Protected mode off, no password: served. (Bound to the veth address only, not to
        # every interface: no password-less server is exposed beyond this machine.)
        unprotected = servers.start("kvred", bind=f"127.0.0.1 {ns.host_addr}", protected_mode="no")
        out = ns.client(unprotected.port, ["PING", "SET sec:ns v", "GET sec:ns"])
        assert out["replies"] == [b"+PONG\r\n", b"+OK\r\n", b"$1\r\n"] and out["rest"] == b"v\r\n", out
        for server in (open_kvred, guarded, unprotected):
            assert "Traceback" not in server.log_path.read_text(errors="replace"), server.log_tail()
    finally:
        ns.close()
    assert _ip("netns", "list").stdout.find(ns.name) < 0, "the test namespace was not removed"
    assert _ip("link", "show", ns.host_if, check=False).returncode != 0, "the veth was not removed"


# ---------------------------------------------------------------- links


@pytest.mark.skipif(against_redis(), reason="kvred process model")
def test_links_have_no_filesystem_path(with_password: Pair) -> None:
    server = with_password.kvred
    with _py(server.port, 2, password=P) as r:
        writer_pid = int(r.info("server")["writer_process_id"])
    procs = kvred_tree(server)
    pids = {p.pid for p in procs}
    assert writer_pid in pids and server.pid in pids, (writer_pid, pids)
    assert len(procs) == 4, f"expected supervisor + writer + 2 workers, got {pids}"
    per_process = {}
    for p in procs:
        conns = p.net_connections(kind="unix")
        per_process[p.pid] = conns
        named = [c for c in conns if c.laddr or c.raddr]
        assert not named, f"process {p.pid} has unix sockets with a path: {named}"
    # Not vacuous: the writer holds its control socket and one link per worker.
    assert len(per_process[writer_pid]) >= 3, per_process[writer_pid]
    # ... and nothing socket-like was created in the data directory or directly in /tmp by kvred.
    for root in (server.dir, Path("/tmp")):
        for entry in os.scandir(root):
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISSOCK(st.st_mode):
                owners = [p.pid for p in procs if any(c.laddr == entry.path for c in per_process[p.pid])]
                assert not owners and root != server.dir, f"socket file {entry.path} (kvred pids {owners})"
