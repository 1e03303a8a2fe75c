"""Bad settings at start-up: one line on stderr and exit code 2, never a traceback.

deploy/kvred.service has RestartPreventExitStatus=2: a bad flag or config line must
not be restarted forever, so it must exit 2, and before anything is forked (not as
"the writer exited unexpectedly", exit 1, which systemd restarts). Each case runs the
real `python -m kvred` and checks: exit code 2, nothing on stdout, exactly one line on
stderr that names the offending value (and for a config file, the file, the line
number and the line), no traceback.

Where redis-server has the same rule, it runs with the equivalent setting and must
refuse it too (the oracle); it exits 1 with a multi-line FATAL CONFIG FILE ERROR, and
`redis_says` is a piece of its message. Valid settings at the edges (the 1mb minimums,
Redis's names in a config file, a --dir kvred may not write with --appendonly no)
start a real server, which must answer PING and report them in CONFIG GET.

The unprivileged cases run kvred as `nobody` and need root; without root they are
skipped, or fail when the environment variable CI is set.
"""

from __future__ import annotations

import os
import pwd
import shutil
import site
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import REPO_ROOT, ServerProcess, _kvred_env, free_port, require_tool
from rawclient import RawClient, parse_reply

from kvred.config import parse_args

CLI_TIMEOUT_S = 20.0  # a refusal takes well under a second; this only bounds a server that started instead
NOBODY = "nobody"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def describe(self) -> str:
        return f"exit {self.code}\nstdout={self.out!r}\nstderr={self.err!r}"


def run_once(argv: list[str], cwd: Path, env: dict[str, str] | None = None, **popen: Any) -> Run:
    """Run a command that should exit by itself; kill it (and its children, by PID) and fail if not."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, **popen)
    try:
        out, err = proc.communicate(timeout=CLI_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"{argv!r} still running after {CLI_TIMEOUT_S} s: it started instead of refusing\n"
                    f"stdout={out!r}\nstderr={err!r}")
    return Run(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def kvred_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test environment without any KVRED_* setting of the caller's, plus `extra`."""
    env = {k: v for k, v in _kvred_env().items() if not k.startswith("KVRED_")}
    env.update(extra or {})
    return env


def base_flags(workdir: Path, port: int = 0) -> list[str]:
    """Valid settings; a case's own flags come after them and win."""
    return ["--port", str(port or free_port()), "--bind", "127.0.0.1", "--workers", "1", "--dir", str(workdir)]


def assert_refused(run: Run, *needles: str) -> str:
    """Exit 2, one stderr line mentioning every needle, no traceback; returns the line."""
    lines = run.err.splitlines()
    assert run.code == 2, run.describe()
    assert run.out == "", run.describe()
    assert len(lines) == 1 and run.err.endswith("\n") and lines[0].strip(), run.describe()
    assert "Traceback" not in run.err and "exited unexpectedly" not in run.err, run.describe()
    line = lines[0]
    assert line.startswith("kvred: error: "), line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


def redis_refuses(args: list[str], workdir: Path, redis_says: str, **popen: Any) -> None:
    """The oracle: redis-server with the same setting exits non-zero, saying `redis_says`."""
    exe = require_tool("redis-server")
    run = run_once([exe, *args], workdir, **popen)
    assert run.code != 0, f"redis-server accepted {args!r}\n{run.describe()}"
    assert redis_says in run.out + run.err, run.describe()


def redis_base(workdir: Path, port: int = 0) -> list[str]:
    return ["--port", str(port or free_port()), "--save", "", "--appendonly", "no", "--dir", str(workdir)]


def config_get(port: int, name: str) -> str:
    with RawClient(port) as c:
        kind, items = parse_reply(c.call("CONFIG", "GET", name))
    assert kind == "*" and len(items) == 2, items
    value: bytes = items[1][1]
    return value.decode()


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


# ---------------------------------------------------------------- bad flags


@dataclass(frozen=True)
class Bad:
    args: list[str]  # kvred flags after the valid base flags ("{tmp}" is the test's directory)
    needles: tuple[str, ...]  # what kvred's one stderr line must contain
    redis: list[str] | None = None  # the same setting for redis-server; None: Redis has no such rule
    redis_says: str = ""
    env: dict[str, str] = field(default_factory=dict)


RANGE_LLONG_1MB = "argument must be between 1048576 and 9223372036854775807 inclusive"
RANGE_INT = "argument must be between 0 and 2147483647 inclusive"
NOT_AN_INTEGER = "argument couldn't be parsed into an integer"
COBL_COUNT = "Wrong number of arguments in buffer limit configuration."

BAD_FLAGS = {
    # 1. appendfilename: a name inside --dir
    "appendfilename-path": Bad(["--appendfilename", "a/b"],
                               ("'a/b'", "appendfilename can't be a path, just a filename"),
                               ["--appendfilename", "a/b"], "appendfilename can't be a path, just a filename"),
    "appendfilename-empty": Bad(["--appendfilename", ""], ("appendfilename can't be empty",),
                                ["--appendfilename", ""], "appendfilename can't be empty"),
    "appendfilename-dotdot": Bad(["--appendfilename", ".."], ("'..'", "can't be a path")),
    # 2. --dir
    "dir-proc": Bad(["--dir", "/proc"], ("/proc/kvred.aof", "can't open the append-only file"),
                    ["--dir", "/proc", "--appendonly", "yes"], "Can't open or create append-only dir"),
    "dir-missing": Bad(["--dir", "/nonexistent/kvred-dir"], ("'/nonexistent/kvred-dir'", "does not exist"),
                       ["--dir", "/nonexistent/kvred-dir"], "No such file or directory"),
    "dir-empty": Bad(["--dir", ""], ("data directory can't be empty",), ["--dir", ""], "No such file or directory"),
    # 3. --bind: IP literals only, checked without any resolver
    "bind-999": Bad(["--bind", "999.1.1.1"], ("'999.1.1.1'", "not an IPv4 or IPv6 address"),
                    ["--bind", "999.1.1.1"], "999.1.1.1"),
    "bind-one-bad-of-three": Bad(["--bind", "127.0.0.1 ::1 10.0.0.256"], ("'10.0.0.256'",),
                                 ["--bind", "127.0.0.1 ::1 10.0.0.256"], "10.0.0.256"),
    "bind-ipv6-bad": Bad(["--bind", "::1::2"], ("'::1::2'",), ["--bind", "::1::2"], "::1::2"),
    "bind-empty": Bad(["--bind", ""], ("no address to listen on",), ["--bind", ""], "not listen anywhere"),
    # (Redis resolves a host name; kvred takes addresses only)
    "bind-hostname": Bad(["--bind", "kvred.invalid"], ("'kvred.invalid'", "not an IPv4 or IPv6 address")),
    # 4., 5. numeric ranges, Redis's
    "auto-aof-rewrite-percentage-negative": Bad(["--auto-aof-rewrite-percentage", "-1"], ("'-1'", RANGE_INT),
                                                ["--auto-aof-rewrite-percentage", "-1"], RANGE_INT),
    "proto-max-bulk-len-1000": Bad(["--proto-max-bulk-len", "1000"], ("'1000'", RANGE_LLONG_1MB),
                                   ["--proto-max-bulk-len", "1000"], RANGE_LLONG_1MB),
    "proto-max-bulk-len-0": Bad(["--proto-max-bulk-len", "0"], ("'0'", RANGE_LLONG_1MB),
                                ["--proto-max-bulk-len", "0"], RANGE_LLONG_1MB),
    "proto-max-bulk-len-1mb-minus-1": Bad(["--proto-max-bulk-len", "1048575"], ("'1048575'", RANGE_LLONG_1MB),
                                          ["--proto-max-bulk-len", "1048575"], RANGE_LLONG_1MB),
    "client-query-buffer-limit-0": Bad(["--client-query-buffer-limit", "0"], ("'0'", RANGE_LLONG_1MB),
                                       ["--client-query-buffer-limit", "0"], RANGE_LLONG_1MB),
    "client-query-buffer-limit-1000kb": Bad(["--client-query-buffer-limit", "1000kb"], ("'1000kb'", RANGE_LLONG_1MB),
                                            ["--client-query-buffer-limit", "1000kb"], RANGE_LLONG_1MB),
    # 6. client-output-buffer-limit: kvred's one size, or Redis's class form
    "client-output-buffer-limit-12zb": Bad(["--client-output-buffer-limit", "12zb"], ("'12zb'",),
                                           ["--client-output-buffer-limit", "12zb"], COBL_COUNT),
    "client-output-buffer-limit-3-words": Bad(["--client-output-buffer-limit", "normal 64mb 64mb"], (COBL_COUNT,),
                                              ["--client-output-buffer-limit", "normal 64mb 64mb"], COBL_COUNT),
    "client-output-buffer-limit-master": Bad(
        ["--client-output-buffer-limit", "master 64mb 64mb 0"],
        ("Invalid client class specified in buffer limit configuration.",),
        ["--client-output-buffer-limit", "master 64mb 64mb 0"],
        "Invalid client class specified in buffer limit configuration."),
    "client-output-buffer-limit-negative-seconds": Bad(
        ["--client-output-buffer-limit", "normal 64mb 64mb -1"],
        ("Error in hard, soft or soft_seconds setting in buffer limit configuration.",),
        ["--client-output-buffer-limit", "normal 64mb 64mb -1"],
        "Error in hard, soft or soft_seconds setting in buffer limit configuration."),
    # 7. the rest
    "port-0": Bad(["--port", "0"], ("'0'", "between 1 and 65535"), ["--port", "0"], "not listen anywhere"),
    "port-70000": Bad(["--port", "70000"], ("'70000'", "between 1 and 65535"),
                      ["--port", "70000"], "argument must be between 0 and 65535 inclusive"),
    "port-abc": Bad(["--port", "abc"], ("'abc'", NOT_AN_INTEGER), ["--port", "abc"], NOT_AN_INTEGER),
    "workers-0": Bad(["--workers", "0"], ("'0'", "between 1 and 64")),
    "workers-huge": Bad(["--workers", "99999999999"], ("'99999999999'", "between 1 and 64")),
    "maxclients-0": Bad(["--maxclients", "0"], ("'0'", "argument must be between 1 and 4294967295 inclusive"),
                        ["--maxclients", "0"], "argument must be between 1 and 4294967295 inclusive"),
    "timeout-negative": Bad(["--timeout", "-1"], ("'-1'", RANGE_INT), ["--timeout", "-1"], RANGE_INT),
    "timeout-underscore": Bad(["--timeout", "1_0"], ("'1_0'", NOT_AN_INTEGER), ["--timeout", "1_0"], NOT_AN_INTEGER),
    "loglevel-loud": Bad(["--loglevel", "loud"], ("'loud'", "debug, verbose, notice, warning"), ["--loglevel", "loud"],
                         "argument(s) must be one of the following: debug, verbose, notice, warning"),
    "appendfsync-sometimes": Bad(["--appendfsync", "sometimes"], ("'sometimes'", "everysec, always, no"),
                                 ["--appendfsync", "sometimes"], "argument(s) must be one of the following"),
    "fsync-sometimes": Bad(["--fsync", "sometimes"], ("'sometimes'",)),
    "appendonly-maybe": Bad(["--appendonly", "maybe"], ("'maybe'", "argument must be 'yes' or 'no'"),
                            ["--appendonly", "maybe"], "argument must be 'yes' or 'no'"),
    "auto-aof-rewrite-min-size-bad": Bad(["--auto-aof-rewrite-min-size", "64zb"], ("'64zb'",),
                                         ["--auto-aof-rewrite-min-size", "64zb"], "argument must be a memory value"),
    "unknown-flag": Bad(["--no-such-flag", "1"], ("--no-such-flag",),
                        ["--no-such-flag", "1"], "Bad directive or wrong number of arguments"),
    "abbreviated-flag": Bad(["--work", "2"], ("--work",),
                            ["--work", "2"], "Bad directive or wrong number of arguments"),
    "env-KVRED_WORKERS": Bad([], ("KVRED_WORKERS", "'abc'", NOT_AN_INTEGER), env={"KVRED_WORKERS": "abc"}),
    "env-KVRED_FSYNC": Bad([], ("KVRED_FSYNC", "'bogus'"), env={"KVRED_FSYNC": "bogus"}),
}


@pytest.mark.parametrize("case", BAD_FLAGS.values(), ids=BAD_FLAGS.keys())
def test_bad_flag_exits_2_with_one_line(case: Bad, tmp_path: Path) -> None:
    run = run_once([sys.executable, "-m", "kvred", *base_flags(tmp_path), *case.args], tmp_path,
                   env=kvred_env(case.env))
    assert_refused(run, *case.needles)
    assert not (tmp_path / "kvred.aof").exists(), "refused, but something was started first"
    if case.redis is not None:
        redis_refuses([*redis_base(tmp_path), *case.redis], tmp_path, case.redis_says)


def test_dir_that_is_a_file(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    run = run_once([sys.executable, "-m", "kvred", *base_flags(tmp_path), "--dir", str(afile)], tmp_path,
                   env=kvred_env())
    assert_refused(run, repr(str(afile)), "Not a directory")
    redis_refuses([*redis_base(tmp_path), "--dir", str(afile)], tmp_path, "Not a directory")


def test_aof_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "kvred.aof").mkdir()
    run = run_once([sys.executable, "-m", "kvred", *base_flags(tmp_path)], tmp_path, env=kvred_env())
    assert_refused(run, str(tmp_path / "kvred.aof"), "Is a directory")


# ---------------------------------------------------------------- bad config files


@dataclass(frozen=True)
class BadFile:
    text: bytes  # the file; the bad line is line `line`
    line: int
    needles: tuple[str, ...]
    redis_says: str | None = None  # None: redis-server has no such rule


BAD_FILES = {
    # Redis has no trailing comments: the words after `always` are three more arguments.
    "trailing-comment": BadFile(b"# kvred\nloglevel notice\n\nappendfsync always # every write\n", 4,
                                ("'appendfsync always # every write'", "wrong number of arguments"),
                                "wrong number of arguments"),
    "trailing-comment-kvred-name": BadFile(b"fsync always # every write\n", 1,
                                           ("'fsync always # every write'", "wrong number of arguments")),
    "unknown-directive": BadFile(b"loglevel notice\nbogus-directive yes\n", 2,
                                 ("'bogus-directive yes'", "Bad directive or wrong number of arguments"),
                                 "Bad directive or wrong number of arguments"),
    "abbreviated-directive": BadFile(b"work 2\n", 1, ("'work 2'", "Bad directive or wrong number of arguments"),
                                     "Bad directive or wrong number of arguments"),
    "missing-value": BadFile(b"port\n", 1, ("'port'", "wrong number of arguments"), "wrong number of arguments"),
    "unbalanced-quotes": BadFile(b'requirepass "secret\n', 1, ("Unbalanced quotes in configuration line",),
                                 "Unbalanced quotes in configuration line"),
    "bad-value": BadFile(b"\r\nproto-max-bulk-len 1000\r\n", 2, ("'proto-max-bulk-len 1000'", RANGE_LLONG_1MB),
                         RANGE_LLONG_1MB),
    "bad-bind": BadFile(b"bind 127.0.0.1 999.1.1.1\n", 1, ("'bind 127.0.0.1 999.1.1.1'", "not an IPv4 or IPv6"),
                        "999.1.1.1"),
    "client-output-buffer-limit-3-words": BadFile(b"client-output-buffer-limit normal 64mb 64mb\n", 1,
                                                  (COBL_COUNT,), COBL_COUNT),
    "appendfilename-path": BadFile(b'appendfilename "../x.aof"\n', 1, ("can't be a path, just a filename",),
                                   "appendfilename can't be a path, just a filename"),
    "not-utf-8": BadFile(b"requirepass \xff\xfe\n", 1, ("'requirepass \\xff\\xfe'", "not valid UTF-8")),
    "control-character": BadFile(b"loglevel \x1bnotice\n", 1, ("'loglevel \\x1bnotice'",),
                                 "argument(s) must be one of the following"),
}


@pytest.mark.parametrize("case", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_config_file_line_names_file_and_line(case: BadFile, tmp_path: Path) -> None:
    conf = tmp_path / "kvred.conf"
    conf.write_bytes(case.text)
    run = run_once([sys.executable, "-m", "kvred", str(conf), "--port", str(free_port()), "--workers", "1",
                    "--dir", str(tmp_path)], tmp_path, env=kvred_env())
    assert_refused(run, f"{conf}:{case.line}: ", *case.needles)
    if case.redis_says is not None:
        redis_refuses([str(conf), *redis_base(tmp_path)], tmp_path, case.redis_says)


def test_config_file_that_is_missing_or_a_directory(tmp_path: Path) -> None:
    missing = tmp_path / "missing.conf"
    run = run_once([sys.executable, "-m", "kvred", str(missing), *base_flags(tmp_path)], tmp_path, env=kvred_env())
    assert_refused(run, f"cannot read config file {missing}: No such file or directory")
    redis_refuses([str(missing), *redis_base(tmp_path)], tmp_path, "can't open config file")
    # (redis-server reads a directory as an empty file and starts; kvred refuses it)
    run = run_once([sys.executable, "-m", "kvred", str(tmp_path), *base_flags(tmp_path)], tmp_path, env=kvred_env())
    assert_refused(run, f"cannot read config file {tmp_path}: Is a directory")


# ---------------------------------------------------------------- valid settings at the edges


def start_server(name: str, argv: list[str], port: int, workdir: Path,
                 env: dict[str, str] | None = None) -> ServerProcess:
    return ServerProcess(name, argv, port, workdir, env=env).start()


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    """Servers a test started; each is stopped by PID (SIGTERM, then SIGKILL) at teardown."""
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def test_minimums_and_redis_names_as_flags(servers: list[ServerProcess], tmp_path: Path) -> None:
    flags = ["--proto-max-bulk-len", "1mb", "--client-query-buffer-limit", "1mb", "--appendfsync", "always"]
    port = free_port()
    kvred = start_server("kvred", [sys.executable, "-m", "kvred", *base_flags(tmp_path, port), *flags,
                                   "--client-output-buffer-limit", "normal 32mb 16mb 60"],
                         port, tmp_path, env=kvred_env())
    servers.append(kvred)
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis_port = free_port()
    redis = start_server("redis-server", [require_tool("redis-server"), *redis_base(redis_dir, redis_port),
                                          "--bind", "127.0.0.1", *flags], redis_port, redis_dir)
    servers.append(redis)
    for server in (kvred, redis):
        assert config_get(server.port, "proto-max-bulk-len") == "1048576"
        assert config_get(server.port, "client-query-buffer-limit") == "1048576"
        assert config_get(server.port, "appendfsync") == "always"
    # kvred uses the normal class's hard limit (and the pubsub class, here Redis's default)
    assert config_get(kvred.port, "client-output-buffer-limit") == "normal 33554432 33554432 0" + OTHER_CLASSES


# what CONFIG GET client-output-buffer-limit shows after the normal class (Redis's defaults)
OTHER_CLASSES = " slave 268435456 67108864 60 pubsub 33554432 8388608 60"


VALID_FILE = (
    b"# kvred and redis-server read this same file\r\n"
    b"    # an indented comment is a comment too\n"
    b"\n"
    b"bind 127.0.0.1 127.0.0.2\n"
    b"appendfsync always\r\n"
    b"proto-max-bulk-len 1mb\n"
    b"client-output-buffer-limit normal 64mb 64mb 0\n"
    b"client-output-buffer-limit replica 256mb 64mb 60 pubsub 32mb 8mb 60\n"  # other classes: the normal one stays
    b'loglevel "warning"\n'
)


def test_config_file_with_redis_names(servers: list[ServerProcess], tmp_path: Path) -> None:
    conf = tmp_path / "kvred.conf"
    conf.write_bytes(VALID_FILE)
    port = free_port()
    kvred = start_server("kvred", [sys.executable, "-m", "kvred", str(conf), "--port", str(port), "--workers", "1",
                                   "--dir", str(tmp_path)], port, tmp_path, env=kvred_env())
    servers.append(kvred)
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis_port = free_port()
    redis = start_server("redis-server", [require_tool("redis-server"), str(conf), "--port", str(redis_port),
                                          "--save", "", "--appendonly", "no", "--dir", str(redis_dir)],
                         redis_port, redis_dir)
    servers.append(redis)
    for server in (kvred, redis):
        assert config_get(server.port, "appendfsync") == "always"
        assert config_get(server.port, "bind") == "127.0.0.1 127.0.0.2"
        assert config_get(server.port, "proto-max-bulk-len") == "1048576"
        assert config_get(server.port, "loglevel") == "warning"
        assert config_get(server.port, "client-output-buffer-limit").startswith("normal 67108864 67108864 0")
    assert config_get(kvred.port, "client-output-buffer-limit") == "normal 67108864 67108864 0" + OTHER_CLASSES
    with RawClient(port, host="127.0.0.2") as c:  # the second bind address serves too
        assert c.call("PING") == b"+PONG\r\n"


def test_config_file_kvred_forms_and_flags_win(servers: list[ServerProcess], tmp_path: Path) -> None:
    """kvred's own names and forms keep working: fsync, a single output limit, a quoted bind list."""
    conf = tmp_path / "kvred.conf"
    conf.write_text('fsync no\nclient-output-buffer-limit 64mb\nbind "127.0.0.1"\nrequirepass "-starts-with-dash"\n')
    port = free_port()
    kvred = start_server("kvred", [sys.executable, "-m", "kvred", str(conf), "--port", str(port), "--workers", "1",
                                   "--dir", str(tmp_path), "--requirepass", "", "--appendfsync", "everysec"],
                         port, tmp_path, env=kvred_env())
    servers.append(kvred)
    assert config_get(port, "appendfsync") == "everysec"
    assert config_get(port, "client-output-buffer-limit") == "normal 67108864 67108864 0" + OTHER_CLASSES
    assert config_get(port, "requirepass") == ""


def test_parse_args_merges_as_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: a later line for other classes keeps the normal limit; a flag wins over the
    file; a value that starts with '-' is a value (it was 'expected one argument')."""
    for name in [n for n in os.environ if n.startswith("KVRED_")]:
        monkeypatch.delenv(name)
    conf = tmp_path / "kvred.conf"
    conf.write_text("client-output-buffer-limit normal 1mb 0 0\n"
                    "client-output-buffer-limit pubsub 32mb 8mb 60\n"
                    "requirepass '-secret'\n"
                    "APPENDFSYNC always\n")
    config = parse_args([str(conf), "--dir", str(tmp_path)])
    assert (config.client_output_buffer_limit, config.requirepass, config.fsync) == (1024 * 1024, "-secret", "always")
    config = parse_args([str(conf), "--dir", str(tmp_path), "--fsync", "no", "--client-output-buffer-limit", "2mb"])
    assert (config.client_output_buffer_limit, config.fsync) == (2 * 1024 * 1024, "no")
    monkeypatch.setenv("KVRED_PASSWORD", "-from-env")
    assert parse_args(["--dir", str(tmp_path)]).requirepass == "-from-env"


def test_unwritable_dir_is_fine_with_appendonly_no(servers: list[ServerProcess], tmp_path: Path) -> None:
    port = free_port()
    kvred = start_server("kvred", [sys.executable, "-m", "kvred", *base_flags(tmp_path, port), "--dir", "/proc",
                                   "--appendonly", "no"], port, tmp_path, env=kvred_env())
    servers.append(kvred)
    assert config_get(port, "appendonly") == "no"
    assert config_get(port, "dir") == "/proc"


# ---------------------------------------------------------------- kvred as an unprivileged user


@dataclass(frozen=True)
class Nobody:
    """How to run kvred as `nobody`: the user, an interpreter it can execute, and the environment."""

    user: pwd.struct_passwd
    python: str
    env: dict[str, str]

    @property
    def popen(self) -> dict[str, Any]:
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}


@pytest.fixture(scope="module")
def nobody() -> Nobody:
    """Root only. The interpreter may live where `nobody` cannot reach (pyenv under /root): then
    the system Python of the same version runs kvred, with this venv's site-packages on its path."""
    if os.geteuid() != 0:
        skip_or_fail("running kvred as another user needs root")
    try:
        user = pwd.getpwnam(NOBODY)
    except KeyError:
        skip_or_fail(f"no user {NOBODY!r}")
        raise
    env = kvred_env({"PYTHONDONTWRITEBYTECODE": "1"})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *site.getsitepackages()])
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [sys.executable, *(p for d in ("/usr/local/bin", "/usr/bin") if (p := shutil.which(version, path=d)))]
    tried = []
    for python in candidates:
        try:
            probe = subprocess.run([python, "-c", "import kvred.supervisor"], cwd="/", env=env, capture_output=True,
                                   timeout=CLI_TIMEOUT_S, user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        except OSError as exc:  # exec() as nobody failed
            tried.append(f"{python}: {exc}")
            continue
        if probe.returncode == 0:
            return Nobody(user, python, env)
        tried.append(f"{python}: {probe.stderr.decode(errors='replace').strip()[-200:]}")
    skip_or_fail(f"no Python that {NOBODY} can run kvred with: {tried}")
    raise AssertionError("unreachable")


@pytest.fixture
def root_owned_dir() -> Iterator[Path]:
    """A fresh root-owned 0755 directory that `nobody` can traverse but not write (pytest's
    tmp_path is under a 0700 directory)."""
    top = Path(tempfile.mkdtemp(prefix="kvred-config-", dir="/tmp"))
    try:
        top.chmod(0o755)
        data = top / "data"
        data.mkdir(mode=0o755)
        yield data
    finally:
        shutil.rmtree(top)


def test_root_owned_dir_as_unprivileged_user(nobody: Nobody, root_owned_dir: Path) -> None:
    """The container case: the image runs as uid 999 and /data is a root-owned bind mount."""
    run = run_once([nobody.python, "-m", "kvred", *base_flags(root_owned_dir)], root_owned_dir, env=nobody.env,
                   **nobody.popen)
    assert_refused(run, str(root_owned_dir / "kvred.aof"), f"uid {nobody.user.pw_uid}", "Permission denied")
    redis_refuses([*redis_base(root_owned_dir), "--appendonly", "yes"], root_owned_dir, "Permission denied",
                  **nobody.popen)


def test_unreadable_config_file_as_unprivileged_user(nobody: Nobody, root_owned_dir: Path) -> None:
    conf = root_owned_dir / "kvred.conf"
    conf.write_text("loglevel notice\n")
    conf.chmod(0o600)
    run = run_once([nobody.python, "-m", "kvred", str(conf), *base_flags(root_owned_dir), "--appendonly", "no"],
                   root_owned_dir, env=nobody.env, **nobody.popen)
    assert_refused(run, f"cannot read config file {conf}", "Permission denied")
    redis_refuses([str(conf), *redis_base(root_owned_dir)], root_owned_dir, "Permission denied", **nobody.popen)


def test_root_owned_dir_as_unprivileged_user_with_appendonly_no(nobody: Nobody, root_owned_dir: Path,
                                                                servers: list[ServerProcess]) -> None:
    """Nothing is written with --appendonly no, so the directory need not be writable."""
    setpriv = require_tool("setpriv")  # exec()s kvred, so the PID ServerProcess stops is kvred's own
    port = free_port()
    argv = [setpriv, f"--reuid={nobody.user.pw_uid}", f"--regid={nobody.user.pw_gid}", "--clear-groups",
            nobody.python, "-m", "kvred", *base_flags(root_owned_dir, port), "--appendonly", "no"]
    server = start_server("kvred", argv, port, root_owned_dir, env=nobody.env)
    servers.append(server)
    assert psutil.Process(server.pid).uids().effective == nobody.user.pw_uid
    assert config_get(port, "appendonly") == "no"
    assert sorted(p.name for p in root_owned_dir.iterdir()) == ["kvred.log"]  # ServerProcess's log only
