#!/usr/bin/env python3
"""A persistent-connection RESP load generator (loopback only).

    python bench/client.py --port 6380 --mode get -n 100000 --pipeline 16 --connections 50

Each connection is an asyncio Protocol (uvloop when installed) on one TCP
connection kept open for the whole run. A connection sends a batch of
--pipeline commands in one write, waits for exactly that many replies, records
the round-trip time of the batch, and sends the next batch; -n requests in all
are shared among the connections, as redis-benchmark does. Latency percentiles
are therefore per request round trip when --pipeline is 1 and per pipeline
batch otherwise.

Keys are random in [0, --keyspace) and look like redis-benchmark's
(`key:000000012345`, `counter:...` for INCR); MSET sets 10 keys, like
redis-benchmark's MSET test. The standard library only (+ uvloop if present).

Exit status: 0 on success, 1 if any reply was an error, 2 on bad usage,
3 on a connection failure or when --timeout expired.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import ipaddress
import json
import math
import random
import socket
import sys
import time

MODES = ("ping", "get", "exists", "set", "del", "mset", "incr")
MSET_KEYS = 10
LABELS = {"mset": f"MSET ({MSET_KEYS} keys)"}


class ReplyIncomplete(Exception):
    pass


def reply_end(buf: bytes | bytearray, pos: int) -> int:
    """Index just past the complete RESP2/RESP3 reply at `pos` (ReplyIncomplete if partial)."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise ReplyIncomplete
    kind = buf[pos]
    after = end + 2
    if kind in b"+-:_,#(":
        return after
    if kind in b"$=!":
        size = int(buf[pos + 1 : end])
        if size < 0:
            return after
        after += size + 2
        if after > len(buf):
            raise ReplyIncomplete
        return after
    if kind in b"*~>%|":
        count = int(buf[pos + 1 : end])
        if kind in b"%|":
            count *= 2
        for _ in range(max(count, 0)):
            after = reply_end(buf, after)
        return after
    raise ValueError(f"bad RESP type byte {chr(kind)!r} at offset {pos}")


class Workload:
    """Makes the request batches and hands them out until -n requests are sent."""

    def __init__(self, mode: str, requests: int, pipeline: int, keyspace: int, datasize: int) -> None:
        self.mode = mode
        self.remaining = requests
        self.pipeline = pipeline
        self.keyspace = keyspace
        value = b"x" * datasize
        vlen = b"%d" % datasize
        # Keys have a fixed width so every command of a mode has the same length.
        key = b"$16\r\nkey:%012d\r\n"
        templates = {
            "ping": b"*1\r\n$4\r\nPING\r\n",
            "get": b"*2\r\n$3\r\nGET\r\n" + key,
            "exists": b"*2\r\n$6\r\nEXISTS\r\n" + key,
            "del": b"*2\r\n$3\r\nDEL\r\n" + key,
            "incr": b"*2\r\n$4\r\nINCR\r\n$20\r\ncounter:%012d\r\n",
            "set": b"*3\r\n$3\r\nSET\r\n" + key + b"$" + vlen + b"\r\n" + value.replace(b"%", b"%%") + b"\r\n",
            "mset": b"*%d\r\n$4\r\nMSET\r\n" % (1 + 2 * MSET_KEYS)
            + (key + b"$" + vlen + b"\r\n" + value.replace(b"%", b"%%") + b"\r\n") * MSET_KEYS,
        }
        self.template = templates[mode]
        self.args_per_command = MSET_KEYS if mode == "mset" else (0 if mode == "ping" else 1)
        self.full_ping_batch = self.template * pipeline

    def take(self) -> int:
        size = min(self.pipeline, self.remaining)
        self.remaining -= size
        return size

    def batch(self, size: int) -> bytes:
        if self.args_per_command == 0:
            return self.full_ping_batch if size == self.pipeline else self.template * size
        rand = random.randrange
        space = self.keyspace
        t = self.template
        if self.args_per_command == 1:
            return b"".join([t % rand(space) for _ in range(size)])
        k = self.args_per_command
        return b"".join([t % tuple(rand(space) for _ in range(k)) for _ in range(size)])


class Stats:
    def __init__(self) -> None:
        self.latencies_ns: list[int] = []
        self.replies = 0
        self.errors = 0
        self.first_error: str | None = None


class Connection(asyncio.Protocol):
    def __init__(self, work: Workload, stats: Stats, done: asyncio.Future[None]) -> None:
        self.work = work
        self.stats = stats
        self.done = done
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.pos = 0
        self.expect = 0
        self.t0 = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_next(self) -> None:
        assert self.transport is not None
        size = self.work.take()
        if size == 0:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        self.expect = size
        data = self.work.batch(size)
        self.t0 = time.perf_counter_ns()
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos = self.pos
        stats = self.stats
        try:
            while self.expect:
                end = reply_end(buf, pos)
                if buf[pos] == 45:  # b"-"
                    stats.errors += 1
                    if stats.first_error is None:
                        stats.first_error = bytes(buf[pos + 1 : end - 2]).decode(errors="replace")
                pos = end
                self.expect -= 1
                stats.replies += 1
        except ReplyIncomplete:
            pass
        except ValueError as e:
            self.fail(ConnectionError(f"protocol error: {e}"))
            return
        if self.expect:
            self.pos = pos
            return
        stats.latencies_ns.append(time.perf_counter_ns() - self.t0)
        if pos != len(buf):
            self.fail(ConnectionError(f"{len(buf) - pos} unexpected bytes after the replies"))
            return
        del buf[:]
        self.pos = 0
        self.send_next()

    def fail(self, exc: BaseException) -> None:
        if self.transport is not None:
            self.transport.close()
        if not self.done.done():
            self.done.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost: {exc or 'closed by server'}"))


def percentile(sorted_values: list[int], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


async def run(args: argparse.Namespace) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    work = Workload(args.mode, args.requests, args.pipeline, args.keyspace, args.datasize)
    stats = Stats()
    conns: list[tuple[Connection, asyncio.Future[None]]] = []
    for _ in range(args.connections):
        done: asyncio.Future[None] = loop.create_future()
        _, proto = await loop.create_connection(functools.partial(Connection, work, stats, done), args.host, args.port)
        conns.append((proto, done))
    start = time.perf_counter()
    for proto, _ in conns:
        proto.send_next()
    try:
        await asyncio.wait_for(asyncio.gather(*(d for _, d in conns)), timeout=args.timeout)
    finally:
        for proto, _ in conns:
            if proto.transport is not None:
                proto.transport.close()
    elapsed = time.perf_counter() - start
    lat = sorted(stats.latencies_ns)
    ms = 1e-6
    return {
        "tool": "bench/client.py",
        "mode": args.mode,
        "test": LABELS.get(args.mode, args.mode.upper()),
        "host": args.host,
        "port": args.port,
        "requests": stats.replies,
        "pipeline": args.pipeline,
        "connections": args.connections,
        "keyspace": args.keyspace,
        "datasize": args.datasize,
        "elapsed_s": round(elapsed, 6),
        "ops_per_sec": round(stats.replies / elapsed, 2) if elapsed > 0 else 0.0,
        "batches": len(lat),
        "latency_unit": "request round trip" if args.pipeline == 1 else f"pipeline batch of {args.pipeline}",
        "latency_ms": {
            "min": round(lat[0] * ms, 4) if lat else None,
            "mean": round(sum(lat) / len(lat) * ms, 4) if lat else None,
            "p50": round(percentile(lat, 50) * ms, 4),
            "p99": round(percentile(lat, 99) * ms, 4),
            "p999": round(percentile(lat, 99.9) * ms, 4),
            "max": round(lat[-1] * ms, 4) if lat else None,
        },
        "errors": stats.errors,
        "first_error": stats.first_error,
        "loop": type(loop).__module__.split(".")[0],
    }


def text_report(r: dict[str, object]) -> str:
    lat = r["latency_ms"]
    assert isinstance(lat, dict)
    lines = [
        f"{r['test']}: {r['requests']} requests, {r['connections']} connections, pipeline {r['pipeline']}, "
        f"{r['host']}:{r['port']} ({r['loop']})",
        f"  throughput  {r['ops_per_sec']:,.0f} ops/s in {r['elapsed_s']:.3f} s",
        f"  latency per {r['latency_unit']}: p50 {lat['p50']:.3f} ms  p99 {lat['p99']:.3f} ms  "
        f"p99.9 {lat['p999']:.3f} ms  (min {lat['min']:.3f}, max {lat['max']:.3f})",
    ]
    if r["errors"]:
        lines.append(f"  errors      {r['errors']} (first: {r['first_error']})")
    return "\n".join(lines)


def loopback_host(text: str) -> str:
    try:
        infos = socket.getaddrinfo(text, None, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise argparse.ArgumentTypeError(f"cannot resolve {text!r}: {e}") from None
    for info in infos:
        if not ipaddress.ip_address(info[4][0]).is_loopback:
            raise argparse.ArgumentTypeError(f"{text!r} is not a loopback address: this tool only targets "
                                             "127.0.0.0/8 or ::1")
    return text


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("--mode", choices=MODES, default="ping", help="command to send (default ping)")
    p.add_argument("-n", "--requests", type=positive, default=100_000, help="total requests (default 100000)")
    p.add_argument("-P", "--pipeline", type=positive, default=1, help="commands per batch (default 1)")
    p.add_argument("-c", "--connections", type=positive, default=50, help="parallel connections (default 50)")
    p.add_argument("-r", "--keyspace", type=positive, default=100_000, help="random keys in [0, N) (default 100000)")
    p.add_argument("-d", "--datasize", type=int, default=3, help="value size in bytes for SET/MSET (default 3)")
    p.add_argument("--host", type=loopback_host, default="127.0.0.1", help="loopback host (default 127.0.0.1)")
    p.add_argument("-p", "--port", type=positive, default=6380, help="server port (default 6380)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    p.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds (default 300)")
    p.add_argument("--no-uvloop", action="store_true", help="use the standard asyncio loop")
    args = p.parse_args(argv)
    if args.datasize < 0:
        p.error("--datasize must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.no_uvloop:
        try:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            pass
    try:
        result = asyncio.run(run(args))
    except (TimeoutError, OSError) as e:
        what = f"timed out after {args.timeout} s" if isinstance(e, TimeoutError) else str(e)
        print(f"client.py: error: {what}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    if args.format == "json":
        print(json.dumps(result))
    else:
        print(text_report(result))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
