"""The deployment files in deploy/: container image, twemproxy sharding, systemd unit.

- Container (marked `container`; deselect with -m 'not container'): a Debian bookworm
  base image is made with debootstrap (python3 and python3-venv included) and imported
  into podman once; it is reused while `podman image exists` finds it. The image is
  built from deploy/Dockerfile with --build-arg BASE=<that base>, from wheels built on
  this machine (no network inside the build), and run with a published loopback port, a
  named volume and KVRED_PASSWORD. Checked: redis-cli and redis-py with the password,
  the HEALTHCHECK, `podman stop` = graceful (exit code 0, final fsync logged), every key
  back in a new container on the same volume, and -DENIED through the published port
  when no password is set. Containers, volume and image are removed afterwards.
- Sharding: three kvred shards behind nutcracker, configured by deploy/twemproxy.yml
  with loopback ports; redis-benchmark, 10,000 keys, MGET/DEL/MSET across shards, hash
  tags, EXISTS not split, unsupported commands, and a stopped shard.
- systemd: `systemd-analyze verify` and `security --offline` on deploy/kvred.service,
  plus the settings the README promises; deploy/kvred.conf.example covers every flag.

Every wait is bounded (a deadline with polling, or a subprocess timeout). Missing tools
skip, or fail when the environment variable CI is set (conftest.require_tool).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import REPO_ROOT, ServerProcess, against_redis, free_port, require_tool
from rawclient import RawClient, encode_command
from redis.backoff import NoBackoff
from redis.retry import Retry
from test_process import wait_for

from kvred.config import DEFAULT_MAXCLIENTS, GRACEFUL_TIMEOUT_S, build_parser, parse_args

DEPLOY = REPO_ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
UNIT = DEPLOY / "kvred.service"
CONF_EXAMPLE = DEPLOY / "kvred.conf.example"
TWEMPROXY_CONF = DEPLOY / "twemproxy.yml"

BASE_IMAGE = "localhost/kvred-test-base:bookworm"
PASSWORD = "s3cret with spaces"
SHUTDOWN_LOG_LINE = "AOF written and fsynced on shutdown"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15  # podman stop -t: SIGKILL after this; kvred must be done well before
DEBOOTSTRAP_TIMEOUT_S = 900
BUILD_TIMEOUT_S = 600
PODMAN_TIMEOUT_S = 120


def _fail_or_skip(message: str) -> None:
    """Like conftest.require_tool for a missing capability: fail under CI, else skip."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def proxy_client(port: int, **kwargs: Any) -> redis.Redis:
    """redis-py as twemproxy needs it: RESP2 (no HELLO) and no CLIENT SETINFO.

    nutcracker closes the connection on HELLO and on CLIENT, so the defaults of
    redis-py 8 (HELLO 3, then CLIENT SETINFO) cannot connect through it.
    """
    try:
        return redis.Redis(port=port, protocol=2, driver_info=None, socket_timeout=10, **kwargs)
    except TypeError:  # redis-py before driver_info
        return redis.Redis(port=port, protocol=2, lib_name=None, lib_version=None, socket_timeout=10, **kwargs)


# ======================================================================= Dockerfile (static)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined: list[str] = []
    current = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    return [(words[0].upper(), words[1] if len(words) > 1 else "") for words in (j.split(None, 1) for j in joined)]


def test_dockerfile_shape() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("ARG", "BASE=python:3.12-slim")
    froms = [args for name, args in instructions if name == "FROM"]
    assert froms and all(f.split()[0] == "$BASE" for f in froms)
    final = instructions[max(i for i, (name, _) in enumerate(instructions) if name == "FROM"):]
    final_args = {name: args for name, args in final}
    assert final_args["USER"].split(":")[0] not in ("root", "0")
    assert final_args["EXPOSE"] == "6380"
    assert json.loads(final_args["VOLUME"]) == ["/data"]
    assert "HEALTHCHECK" in final_args
    entrypoint = json.loads(final_args["ENTRYPOINT"])  # exec form: kvred itself is PID 1
    assert entrypoint[0] == "kvred"
    assert "dir /data" in DOCKERFILE.read_text() and "bind 0.0.0.0" in DOCKERFILE.read_text()


def healthcheck_command(port: int) -> list[str]:
    """The HEALTHCHECK's shell command, aimed at `port` and run with this Python."""
    args = dict(dockerfile_instructions())["HEALTHCHECK"]
    command = args.split(" CMD ", 1)[1].strip()
    assert command.startswith("python3 -c '") and "6380" in command
    command = sys.executable + command[len("python3"):]
    return ["sh", "-c", command.replace("6380", str(port))]


class PasswordKvred(ServerProcess):
    """kvred with --requirepass: ready once AUTH + PING answers +PONG (conftest's
    readiness check sends PING alone, which gets -NOAUTH)."""

    def __init__(self, workdir: Path, password: str):
        port = free_port()
        argv = [sys.executable, "-m", "kvred", "--port", str(port), "--bind", "127.0.0.1", "--workers", "1",
                "--dir", str(workdir), "--loglevel", "warning", "--requirepass", password]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH"))
                                                          if p))
        super().__init__("kvred-password", argv, port, workdir, env=env)
        self.password = password

    def wait_ready(self, timeout: float) -> None:
        assert self.proc is not None

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"kvred exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with RawClient(self.port, timeout=1) as raw:
                    return raw.call("AUTH", self.password) == b"+OK\r\n" and raw.call("PING") == b"+PONG\r\n"
            except Exception:
                return False
        wait_for(ready, timeout, "kvred with a password to answer")
        self.capture_tree()


def test_healthcheck_command_sends_auth_then_ping(kvred_factory: Callable[..., ServerProcess],
                                                  tmp_path: Path) -> None:
    """The HEALTHCHECK's python -c, run here against kvred with and without a password."""
    if against_redis():
        pytest.skip("kvred-specific: starts kvred with --requirepass")
    open_server = kvred_factory()
    locked = PasswordKvred(tmp_path, PASSWORD).start()
    env = {k: v for k, v in os.environ.items() if k != "KVRED_PASSWORD"}

    def check(port: int, password: str | None) -> int:
        run_env = dict(env, KVRED_PASSWORD=password) if password is not None else env
        return subprocess.run(healthcheck_command(port), env=run_env, timeout=30,
                              capture_output=True).returncode

    try:
        assert check(open_server.port, None) == 0
        assert check(locked.port, PASSWORD) == 0
        assert check(locked.port, None) != 0  # -NOAUTH is not healthy
        assert check(locked.port, "wrong") != 0
        assert check(free_port(), None) != 0  # nothing listening
    finally:
        assert locked.stop() == 0


# ======================================================================= container

CONTAINERS_CONF = """\
# podman/buildah settings for these tests (see shared CONTAINERS.md): crun fails on
# hybrid cgroups here, and root may not raise RLIMIT_NOFILE to podman's default.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
"""


def podman(env: dict[str, str], *args: str, timeout: float = PODMAN_TIMEOUT_S,
           check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *args], env=env, capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)
    if check and result.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def debian_mirror() -> str:
    """The Debian mirror apt uses for bookworm (sources.list, *.list, deb822 *.sources)."""
    apt = Path("/etc/apt")
    files = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list")),
             *sorted((apt / "sources.list.d").glob("*.sources"))]
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if ":" in line and not line.lstrip().startswith("#"):
                        key, _, value = line.partition(":")
                        fields[key.strip().lower()] = value.strip()
                if ("deb" in fields.get("types", "").split() and "bookworm" in fields.get("suites", "").split()
                        and fields.get("enabled", "yes").lower() != "no"):
                    for uri in fields.get("uris", "").split():
                        if uri.startswith(("http://", "https://")):
                            return uri
        else:
            for line in text.splitlines():
                m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(https?://\S+)\s+bookworm\s", line + " ")
                if m:
                    return m.group(1)
    return "http://deb.debian.org/debian"


def ensure_base_image(env: dict[str, str], workdir: Path) -> bool:
    """Make BASE_IMAGE (minbase bookworm + python3 + python3-venv) unless it exists.

    Returns True if it was built now, False if the cached one was used.
    """
    if podman(env, "image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return False
    rootfs = workdir / "rootfs"
    try:
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3,python3-venv", "bookworm",
             str(rootfs), debian_mirror()],
            capture_output=True, text=True, timeout=DEBOOTSTRAP_TIMEOUT_S, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            pytest.fail(f"debootstrap failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        for leftovers in (rootfs / "var/cache/apt/archives", rootfs / "var/lib/apt/lists"):
            for item in leftovers.glob("*"):
                if item.is_file():
                    item.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        try:
            imported = subprocess.run(["podman", "import", "-", BASE_IMAGE], stdin=tar.stdout, env=env,
                                      capture_output=True, text=True, timeout=PODMAN_TIMEOUT_S)
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            tar.wait(PODMAN_TIMEOUT_S)
        if imported.returncode != 0 or tar.returncode != 0:
            pytest.fail(f"podman import failed ({imported.returncode}, tar {tar.returncode}):\n{imported.stderr}")
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return True


def build_wheels(dest: Path, workdir: Path, python_version: str) -> None:
    """kvred and its dependencies as wheels for the image's Python, built on this machine.

    The source is copied first so that the build leaves nothing in the repository.
    """
    src = workdir / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, src / name)
    shutil.copytree(REPO_ROOT / "kvred", src / "kvred", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    if python_version == f"{sys.version_info[0]}.{sys.version_info[1]}":
        cmds = [[*pip, "wheel", str(src), "-w", str(dest)]]  # the documented way: deps included
    else:
        # Another Python here than in the image: fetch binary wheels for the image's version.
        deps = tomllib.loads((src / "pyproject.toml").read_text())["project"]["dependencies"]
        machine = platform.machine()
        platforms = [f"--platform={tag}_{machine}" for tag in
                     ("manylinux_2_28", "manylinux_2_17", "manylinux2014", "manylinux_2_12", "manylinux2010")]
        cmds = [[*pip, "wheel", "--no-deps", str(src), "-w", str(dest)],
                [*pip, "download", "--only-binary=:all:", f"--python-version={python_version}",
                 "--implementation=cp", *platforms, "-d", str(dest), *deps]]
    for cmd in cmds:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
                                cwd=workdir, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def dangling_images(env: dict[str, str]) -> set[str]:
    out = podman(env, "images", "--quiet", "--no-trunc", "--filter", "dangling=true", check=False).stdout
    return set(out.split())


def container_state(env: dict[str, str], name: str) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(podman(env, "inspect", "--type", "container", name).stdout)[0]["State"]
    return state


def container_logs(env: dict[str, str], name: str) -> str:
    result = podman(env, "logs", name, check=False)
    return result.stdout + result.stderr


def wait_answering(env: dict[str, str], name: str, probe: Callable[[], bool]) -> None:
    """Poll `probe` until it succeeds; fail at once, with the logs, if the container exits."""
    def ready() -> bool:
        if not container_state(env, name).get("Running"):
            pytest.fail(f"container {name} exited: {container_state(env, name)}\n{container_logs(env, name)}")
        return probe()
    wait_for(ready, READY_TIMEOUT_S, f"container {name} to answer")


def authed_ping(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, password=PASSWORD, socket_timeout=2, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False  # conmon accepts on the port before kvred listens: resets until then


def first_reply(port: int) -> bytes:
    try:
        with RawClient(port, timeout=2) as client:
            return client.call("PING")
    except Exception:  # reset, timeout or a partial reply while kvred starts
        return b""


@pytest.fixture(scope="module")
def podman_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    for tool in ("podman", "buildah", "debootstrap", "redis-cli"):
        require_tool(tool)
    if os.geteuid() != 0:
        _fail_or_skip("the container test needs root (debootstrap, rootful podman)")
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    return dict(os.environ, CONTAINERS_CONF=str(conf))


@pytest.mark.container
def test_container_image(podman_env: dict[str, str], tmp_path: Path,
                         record_property: Callable[[str, object], None]) -> None:
    started = time.monotonic()
    env = podman_env
    suffix = uuid.uuid4().hex[:8]
    image = f"localhost/kvred-test-deploy:{suffix}"
    volume = f"kvred-test-data-{suffix}"
    first, second, open_one = (f"kvred-test-{role}-{suffix}" for role in ("first", "second", "nopass"))
    dangling_before = dangling_images(env)
    try:
        base_built = ensure_base_image(env, tmp_path)
        base_python = podman(env, "run", "--rm", "--network=none", BASE_IMAGE, "python3", "-c",
                             "import sys; print('%d.%d' % sys.version_info[:2])").stdout.strip()
        wheels = tmp_path / "wheels"
        wheels.mkdir()
        build_wheels(wheels, tmp_path, base_python)

        t_build = time.monotonic()
        # --format docker: the OCI format has no HEALTHCHECK. The context is the repository,
        # as for users; .dockerignore keeps it to the package. The wheels come in by a
        # build-time mount, so the build needs no network.
        build = subprocess.run(
            ["buildah", "bud", "--format", "docker", "-t", image, "-f", str(DOCKERFILE),
             "--build-arg", f"BASE={BASE_IMAGE}", "--build-arg", "WHEELS=/wheels",
             "-v", f"{wheels}:/wheels:ro", str(REPO_ROOT)],
            env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, stdin=subprocess.DEVNULL)
        if build.returncode != 0:
            pytest.fail(f"buildah bud failed:\n{build.stdout[-5000:]}\n{build.stderr[-5000:]}")
        build_s = time.monotonic() - t_build
        size_mb = int(podman(env, "image", "inspect", "--format", "{{.Size}}", image).stdout.strip()) / 1e6
        base_mb = int(podman(env, "image", "inspect", "--format", "{{.Size}}", BASE_IMAGE).stdout.strip()) / 1e6
        record_property("image_size_mb", round(size_mb, 1))
        record_property("base_image_size_mb", round(base_mb, 1))

        inspected = json.loads(podman(env, "image", "inspect", image).stdout)[0]
        config = inspected["Config"]
        assert config["User"].split(":")[0] == "kvred"
        assert "6380/tcp" in config["ExposedPorts"]
        assert "/data" in config["Volumes"]
        assert config["Entrypoint"][0] == "kvred"
        healthcheck = inspected.get("Healthcheck") or config.get("Healthcheck")  # podman: top level
        assert healthcheck and healthcheck["Test"][0] == "CMD-SHELL"

        # ---- first container: password, named volume, loopback-published port
        podman(env, "volume", "create", volume)
        port = free_port()
        podman(env, "run", "-d", "--name", first, "-p", f"127.0.0.1:{port}:6380", "-v", f"{volume}:/data",
               "-e", f"KVRED_PASSWORD={PASSWORD}", image)
        wait_answering(env, first, lambda: authed_ping(port))
        assert podman(env, "exec", first, "id", "-u").stdout.strip() != "0"

        cli = [require_tool("redis-cli"), "-h", "127.0.0.1", "-p", str(port), "-a", PASSWORD, "--no-auth-warning"]
        assert subprocess.run([*cli, "SET", "cli:greeting", "hello world"], capture_output=True, text=True,
                              timeout=30).stdout.strip() == "OK"
        assert subprocess.run([*cli, "GET", "cli:greeting"], capture_output=True, text=True,
                              timeout=30).stdout.strip() == "hello world"
        # without the password: NOAUTH
        with RawClient(port) as raw:
            assert raw.call("GET", "cli:greeting").startswith(b"-NOAUTH")

        client = redis.Redis(port=port, password=PASSWORD, socket_timeout=10)
        expected = {f"key:{i}": f"value-{i}" for i in range(2000)}
        with client.pipeline(transaction=False) as pipe:
            for key, value in expected.items():
                pipe.set(key, value)
            pipe.execute()
        with client.pipeline() as tx:  # MULTI/EXEC
            tx.incr("counter")
            tx.incr("counter")
            tx.execute()
        expected["cli:greeting"] = "hello world"
        expected["counter"] = "2"

        health = podman(env, "healthcheck", "run", first, check=False)
        assert health.returncode == 0, f"healthcheck: {health.stdout} {health.stderr}"
        state = container_state(env, first)
        assert (state.get("Health") or state.get("Healthcheck") or {}).get("Status") == "healthy", state

        t_stop = time.monotonic()
        podman(env, "stop", "-t", str(STOP_TIMEOUT_S), first, timeout=STOP_TIMEOUT_S + 60)
        stop_s = time.monotonic() - t_stop
        state = container_state(env, first)
        logs = container_logs(env, first)
        assert state["ExitCode"] == 0, f"{state}\n{logs}"
        assert stop_s < GRACEFUL_TIMEOUT_S + 2, f"stop took {stop_s:.1f} s: killed, not graceful?\n{logs}"
        assert "received SIGTERM" in logs and SHUTDOWN_LOG_LINE in logs, logs

        # ---- second container on the same volume: every key is back
        port2 = free_port()
        podman(env, "run", "-d", "--name", second, "-p", f"127.0.0.1:{port2}:6380", "-v", f"{volume}:/data",
               "-e", f"KVRED_PASSWORD={PASSWORD}", image)
        wait_answering(env, second, lambda: authed_ping(port2))
        client2 = redis.Redis(port=port2, password=PASSWORD, socket_timeout=10, decode_responses=True)
        keys = list(expected)
        got: list[Any] = []
        for i in range(0, len(keys), 500):
            got += client2.mget(keys[i:i + 500])
        assert dict(zip(keys, got, strict=True)) == expected
        assert client2.dbsize() == len(expected)
        podman(env, "stop", "-t", str(STOP_TIMEOUT_S), second, timeout=STOP_TIMEOUT_S + 60)
        assert container_state(env, second)["ExitCode"] == 0

        # ---- no password: protected mode refuses clients through the published port
        port3 = free_port()
        podman(env, "run", "-d", "--name", open_one, "-p", f"127.0.0.1:{port3}:6380", image)
        wait_answering(env, open_one, lambda: first_reply(port3).startswith(b"-DENIED"))
        # ... while the HEALTHCHECK, on the container's loopback, is fine
        assert podman(env, "healthcheck", "run", open_one, check=False).returncode == 0

        # ---- a root-owned bind-mounted /data: the kvred user cannot create its AOF there.
        # One line and exit code 2 (the unit's RestartPreventExitStatus=2), not a dying writer.
        root_owned = tmp_path / "root-owned-data"
        root_owned.mkdir()
        root_owned.chmod(0o755)
        refused = podman(env, "run", "--rm", "--network=none", "-v", f"{root_owned}:/data", image, check=False)
        # podman's own complaints (no systemd for health-check timers) are `time="..."` lines
        lines = [line for line in refused.stderr.splitlines() if line.strip() and not line.startswith("time=")]
        assert refused.returncode == 2, (refused.returncode, refused.stderr[-2000:])
        assert len(lines) == 1 and "Permission denied" in lines[0] and "/data/kvred.aof" in lines[0], lines

        duration = time.monotonic() - started
        record_property("container_test_s", round(duration, 1))
        print(f"\n[deploy] image {image}: {size_mb:.1f} MB (base {base_mb:.1f} MB, "
              f"{'built now' if base_built else 'cached'}), build {build_s:.1f} s, "
              f"podman stop {stop_s:.2f} s, test {duration:.1f} s")
    finally:
        for name in (first, second, open_one):
            podman(env, "rm", "--force", "--volumes", "--time", "0", name, check=False)
        podman(env, "volume", "rm", "--force", volume, check=False)
        podman(env, "rmi", "--force", image, check=False)
        # the build stage is left behind as an untagged image: remove the ones this build made
        leftovers = dangling_images(env) - dangling_before
        if leftovers:
            podman(env, "rmi", "--force", *sorted(leftovers), check=False)


# ======================================================================= sharding


def twemproxy_config(listen_port: int, shard_ports: list[int]) -> str:
    """deploy/twemproxy.yml with loopback addresses; everything else as shipped."""
    text = TWEMPROXY_CONF.read_text()
    text, n = re.subn(r"(?m)^(\s*listen:\s*)\S+$", rf"\g<1>127.0.0.1:{listen_port}", text)
    assert n == 1
    servers = re.findall(r"(?m)^(\s*-\s+)(\S+):(\d+):(\d+)(\s+\S+)?\s*$", text)
    assert len(servers) == len(shard_ports) == 3, servers
    ports = iter(shard_ports)
    text = re.sub(r"(?m)^(\s*-\s+)(\S+):(\d+):(\d+)", lambda m: f"{m.group(1)}127.0.0.1:{next(ports)}:{m.group(4)}",
                  text)
    return text


def test_local_twemproxy_config_is_the_compose_one_on_loopback() -> None:
    """deploy/twemproxy.local.yml (README's recipe without compose) must map keys as the
    compose recipe does: the same settings and shard names, on 127.0.0.1:7001-7003."""
    def settings(text: str) -> list[str]:
        return [line.rstrip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]

    local = (DEPLOY / "twemproxy.local.yml").read_text()
    assert settings(local) == settings(twemproxy_config(22121, [7001, 7002, 7003]))
    check = subprocess.run([require_tool("nutcracker"), "--test-conf", "--conf-file", str(DEPLOY / "twemproxy.local.yml")],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0 and "syntax is ok" in check.stdout + check.stderr, check


class Nutcracker:
    def __init__(self, conf: Path, port: int, workdir: Path):
        self.port = port
        self.log = workdir / "nutcracker.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [require_tool("nutcracker"), "--conf-file", str(conf), "--stats-port", str(free_port()),
                 "--stats-addr", "127.0.0.1", "--output", str(self.log)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self) -> None:
        def answers() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"nutcracker exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.settimeout(1)
                    s.sendall(encode_command("PING"))
                    return s.recv(16) == b"+PONG\r\n"
            except OSError:
                return False
        wait_for(answers, 15, "nutcracker to answer PING")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture(scope="module")
def sharded(kvred_factory: Callable[..., ServerProcess],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Nutcracker, list[ServerProcess]]]:
    require_tool("nutcracker")
    shards = [kvred_factory(workers=1) for _ in range(3)]
    workdir = tmp_path_factory.mktemp("twemproxy")
    conf = workdir / "nutcracker.yml"
    proxy_port = free_port()
    conf.write_text(twemproxy_config(proxy_port, [s.port for s in shards]))
    check = subprocess.run([require_tool("nutcracker"), "--test-conf", "--conf-file", str(conf)],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0 and "syntax is ok" in check.stdout + check.stderr, check
    proxy = Nutcracker(conf, proxy_port, workdir)
    try:
        proxy.wait_ready()
        yield proxy, shards
    finally:
        proxy.stop()


def shard_of(shards: list[ServerProcess], key: str) -> int:
    """Index of the shard that holds `key`, asked of each shard directly."""
    holders = [i for i, s in enumerate(shards) if redis.Redis(port=s.port, protocol=2).exists(key)]
    assert len(holders) == 1, (key, holders)
    return holders[0]


def test_sharding_through_twemproxy(sharded: tuple[Nutcracker, list[ServerProcess]]) -> None:
    proxy, shards = sharded
    direct = [redis.Redis(port=s.port, protocol=2, decode_responses=True) for s in shards]

    bench = subprocess.run([require_tool("redis-benchmark"), "-p", str(proxy.port), "-t", "set,get",
                            "-r", "100000", "-n", "20000", "-q"],
                           capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert bench.returncode == 0, bench.stdout + bench.stderr
    assert "SET:" in bench.stdout and "GET:" in bench.stdout, bench.stdout

    for d in direct:
        d.flushall()
    client = proxy_client(proxy.port, decode_responses=True)
    keys = [f"user:{i}" for i in range(10_000)]
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.set(key, f"v{key}")
        assert all(pipe.execute())
    sizes = [d.dbsize() for d in direct]
    assert sum(sizes) == len(keys)
    # murmur + ketama: about a third each; every shard must hold a fair share
    assert min(sizes) > len(keys) * 0.2, sizes
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.get(key)
        assert pipe.execute() == [f"v{key}" for key in keys]

    # one key from each shard
    by_shard: dict[int, list[str]] = {}
    for key in keys[:200]:
        by_shard.setdefault(shard_of(shards, key), []).append(key)
    assert sorted(by_shard) == [0, 1, 2]
    a, b, c = (by_shard[i][0] for i in range(3))

    # MGET is split across shards and answered in the client's key order
    assert client.mget([c, "no:such:key", a, b]) == [f"v{c}", None, f"v{a}", f"v{b}"]
    # MSET too
    assert client.mset({a: "A", b: "B", c: "C"})
    assert [direct[i].get(k) for i, k in enumerate((a, b, c))] == ["A", "B", "C"]
    # DEL sums the shards' counts
    assert client.delete(a, b, c, "no:such:key") == 3
    assert not any(direct[i].exists(k) for i, k in enumerate((a, b, c)))
    # EXISTS with several keys is NOT split: only the first key's shard is asked
    x, y = by_shard[0][1], by_shard[1][1]
    assert client.exists(x, y) == 1
    # hash tags: only the part in {} is hashed
    tagged = [f"user:{{42}}:{field}" for field in ("name", "email", "plan", "created")]
    client.mset({k: "t" for k in tagged})
    assert len({shard_of(shards, k) for k in tagged}) == 1

    # Unsupported commands (and inline commands): nutcracker closes the connection, no reply
    for command in (("KEYS", "*"), ("INFO",), ("CONFIG", "GET", "maxclients"), ("SELECT", "0"),
                    ("MULTI",), ("DBSIZE",), ("FLUSHALL",), ("HELLO", "3"), ("CLIENT", "SETINFO", "LIB-NAME", "x")):
        with RawClient(proxy.port) as raw:
            raw.send(encode_command(*command))
            data, closed = raw.read_until_close(timeout=5)
            assert (data, closed) == (b"", True), command
    with RawClient(proxy.port) as raw:
        raw.send(b"GET user:1\r\n")
        assert raw.read_until_close(timeout=5) == (b"", True)
    # PING is answered by nutcracker itself
    with RawClient(proxy.port) as raw:
        assert raw.call("PING") == b"+PONG\r\n"


def test_twemproxy_with_a_shard_down(sharded: tuple[Nutcracker, list[ServerProcess]]) -> None:
    """auto_eject_hosts: false: the stopped shard's keys fail, the others keep working.

    Runs after test_sharding_through_twemproxy (same module fixture): it stops shard 1
    and starts it again on the same port and data directory.
    """
    if against_redis():
        pytest.skip("the restarted shard must replay its AOF; the redis oracle runs without one")
    proxy, shards = sharded
    client = proxy_client(proxy.port, decode_responses=True)
    keys = [f"down:{i}" for i in range(300)]
    client.mset({k: k for k in keys})
    by_shard: dict[int, list[str]] = {}
    for key in keys:
        by_shard.setdefault(shard_of(shards, key), []).append(key)
    assert sorted(by_shard) == [0, 1, 2]
    on_down, alive = by_shard[1], by_shard[0] + by_shard[2]

    assert shards[1].stop() == 0  # SIGTERM: graceful, AOF fsynced
    try:
        # keys on the stopped shard: exactly this error, at once (connect refused); the
        # connection stays usable
        with RawClient(proxy.port) as raw:
            assert raw.call("GET", on_down[0]) == b"-ERR Connection refused\r\n"
            assert raw.call("SET", on_down[0], "x") == b"-ERR Connection refused\r\n"
            # DEL and MSET that touch the stopped shard fail as a whole...
            assert raw.call("DEL", alive[1], on_down[2]) == b"-ERR Connection refused\r\n"
            assert raw.call("MSET", alive[0], "partial", on_down[1], "y") == b"-ERR Connection refused\r\n"
            # ...but their parts on live shards were executed
            assert raw.call("GET", alive[1]) == b"$-1\r\n"
            assert raw.call("GET", alive[0]) == b"$7\r\npartial\r\n"
            assert raw.call("PING") == b"+PONG\r\n"
        # MGET of several keys that touches the stopped shard: the error, then nutcracker
        # closes the client connection (redis-py reconnects for the next command)
        with RawClient(proxy.port) as raw:
            assert raw.call("MGET", alive[2], on_down[1]) == b"-ERR Connection refused\r\n"
            assert raw.is_closed(timeout=5)
        with pytest.raises(redis.ResponseError, match="^Connection refused$"):
            client.get(on_down[3])
        # keys on the other shards keep working, reads and writes
        assert client.mget(alive[2:50]) == alive[2:50]
        assert client.set(alive[2], "new") and client.get(alive[2]) == "new"
        assert client.delete(alive[3], alive[4]) == 2
    finally:
        shards[1].start()  # same port and data directory: the AOF is replayed
    # nutcracker reconnects on the next request: no proxy restart needed
    assert wait_for(lambda: _get_or_none(client, on_down[3]) == on_down[3], 15, "the restarted shard to serve")
    assert client.mget(on_down[4:]) == on_down[4:]


def _get_or_none(client: redis.Redis, key: str) -> Any:
    try:
        return client.get(key)
    except redis.RedisError:
        return None


def test_redis_py_defaults_cannot_connect_through_twemproxy(
        sharded: tuple[Nutcracker, list[ServerProcess]]) -> None:
    """Documented in README: redis-py needs protocol=2 and no CLIENT SETINFO here."""
    proxy, _ = sharded
    for kwargs in ({}, {"protocol": 2}):
        with pytest.raises(redis.ConnectionError):
            redis.Redis(port=proxy.port, socket_timeout=5, retry=Retry(NoBackoff(), 0),
                        **kwargs).set("k", "v")  # type: ignore[arg-type]
    assert proxy_client(proxy.port).set("k", "v")


# ======================================================================= systemd


def unit_settings() -> dict[str, list[str]]:
    """Key=value lines of the unit, by key (a key may repeat), comments dropped."""
    settings: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_systemd_unit_settings() -> None:
    s = unit_settings()

    def one(key: str) -> str:
        assert len(s.get(key, [])) == 1, (key, s.get(key))
        return s[key][0]

    assert one("Type") == "simple"
    assert one("ExecStart") == "/usr/local/bin/kvred /etc/kvred/kvred.conf"
    assert one("User") not in ("", "root", "0")
    assert float(one("TimeoutStopSec")) > GRACEFUL_TIMEOUT_S
    assert int(one("LimitNOFILE")) >= DEFAULT_MAXCLIENTS + 32
    assert one("Restart") == "on-failure"
    assert one("KillMode") == "mixed"  # SIGTERM to the supervisor only: it orders the shutdown
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "PrivateDevices"):
        assert one(key) == "yes", key
    assert one("ProtectSystem") == "strict"
    data_dir = "/var/lib/kvred"
    assert data_dir in one("ReadWritePaths").split()
    assert one("WorkingDirectory") == data_dir


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze verify` (unknown keys, bad values, missing binary) and `security`."""
    analyze = require_tool("systemd-analyze")
    kvred_bin = tmp_path / "kvred"
    kvred_bin.write_text("#!/bin/sh\nexit 0\n")
    kvred_bin.chmod(0o755)
    unit = tmp_path / "kvred.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/kvred", str(kvred_bin)))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "kvred.service" not in output, output  # any warning about the unit names it

    security = subprocess.run([analyze, "security", "--offline=yes", str(unit)],
                              capture_output=True, text=True, timeout=60)
    if "--offline" in security.stderr and "unrecognized" in security.stderr:
        return  # systemd < 250 has no offline security analysis
    m = re.search(r"Overall exposure level for kvred\.service: ([0-9.]+)", security.stdout)
    assert m, security.stdout + security.stderr
    assert float(m.group(1)) <= 2.0, security.stdout  # 1.5 "OK" when written


def test_config_example_has_every_flag_with_its_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KVRED_FSYNC", raising=False)
    monkeypatch.delenv("KVRED_PASSWORD", raising=False)
    flags = {opt[2:] for action in build_parser()._actions for opt in action.option_strings
             if opt.startswith("--") and opt != "--help"}
    lines = {m.group(1): m.group(2) for m in re.finditer(r"(?m)^# ([a-z-]+) (.+)$", CONF_EXAMPLE.read_text())
             if m.group(1) in flags}
    assert flags == set(lines), f"missing in kvred.conf.example: {sorted(flags - set(lines))}"
    # Uncommented, the example lines give exactly the built-in defaults (dir, workers and
    # requirepass are machine- or secret-specific and checked by name only).
    conf = tmp_path / "kvred.conf"
    conf.write_text("".join(f"{name} {value}\n" for name, value in lines.items()
                            if name not in ("dir", "workers", "requirepass")))
    from_file = parse_args([str(conf), "--dir", str(tmp_path)])
    assert from_file.config_file == str(conf)  # the one difference: which file was read
    assert dataclasses.replace(from_file, config_file="") == parse_args(["--dir", str(tmp_path)])
