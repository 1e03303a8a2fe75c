"""Messages the server sends unasked count against the receiving client's output limit
(issue 13, item 6): a subscriber that never reads is closed at the pubsub class's hard
limit, a MONITOR client that never reads at the normal limit, and the other clients and
the server's memory are unaffected.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
from conftest import ServerProcess, against_redis
from rawclient import RawClient, encode_command

PAYLOAD = b"x" * 16384


def silent_client(port: int, *command: str) -> socket.socket:
    """A client that sends `command` and then never reads (a tiny receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(encode_command(*command))
    return sock


def flood_until(port: int, gone: Callable[[RawClient], bool], send: Callable[[RawClient], None]) -> int:
    """Send from another client until the server says the silent client is gone (asked on
    a third connection: reading from the silent one would let it drain); the messages sent."""
    deadline = time.monotonic() + 30
    sent = 0
    with RawClient(port, timeout=10) as other, RawClient(port, timeout=10) as check:
        while time.monotonic() < deadline:
            send(other)
            sent += 1
            if sent % 20 == 0 and gone(check):
                assert cmd(other, "PING") == b"+PONG\r\n"
                return sent
    raise AssertionError(f"the silent client was not closed after {sent} messages")


def publish(conn: RawClient) -> None:
    conn.send(encode_command("PUBLISH", "news", PAYLOAD))
    conn.read_reply()


def test_subscriber_that_never_reads_is_cut_off(kvred_factory: Callable[..., ServerProcess]) -> None:
    if against_redis():
        pytest.skip("limits configured with kvred's flags")
    server = kvred_factory(client_output_buffer_limit="pubsub 1mb 0 0", workers=1)
    victim = silent_client(server.port, "SUBSCRIBE", "news")
    with RawClient(server.port) as check:
        deadline = time.monotonic() + 10
        while cmd(check, "PUBSUB", "NUMSUB", "news") != b"*2\r\n$4\r\nnews\r\n:1\r\n":
            assert time.monotonic() < deadline
    sent = flood_until(server.port, lambda c: cmd(c, "PUBSUB", "NUMSUB", "news").endswith(b":0\r\n"), publish)
    assert sent * len(PAYLOAD) < 64 << 20  # cut off near 1 MB, not after tens of MB
    victim.close()


def test_monitor_that_never_reads_is_cut_off(kvred_factory: Callable[..., ServerProcess]) -> None:
    if against_redis():
        pytest.skip("limits configured with kvred's flags")
    server = kvred_factory(client_output_buffer_limit="2mb", workers=1)
    victim = silent_client(server.port, "MONITOR")

    def write(conn: RawClient) -> None:
        conn.send(encode_command("SET", "k", PAYLOAD))
        conn.read_reply()

    sent = flood_until(server.port, lambda c: b"flags=O" not in cmd(c, "CLIENT", "LIST"), write)
    assert sent * len(PAYLOAD) < 64 << 20
    victim.close()


def cmd(conn: RawClient, *args: str) -> bytes:
    conn.send(encode_command(*args))
    return conn.read_reply()
