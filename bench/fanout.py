#!/usr/bin/env python3
"""Publish fan-out: messages delivered per second to N subscribers, kvred vs redis-server.

    python bench/fanout.py                                   # N = 1, 100, 10000
    python bench/fanout.py --subscribers 1,100 --deliveries 1000000 --repeats 3

For each server (kvred `--workers 2` by default, and redis-server, both with the AOF
on under everysec and `--maxclients` raised above the largest N) and each N:

  * N subscriber connections SUBSCRIBE to one channel (PUBSUB NUMSUB is checked);
  * one publisher sends M = --deliveries / N PUBLISH commands (at least
    --min-messages) of a fixed-size payload, pipelined in batches of --batch with at
    most --window batches unanswered; every reply must be N (the receiver count);
  * the figure is N × M / (time from the first PUBLISH written to the moment the last
    subscriber has received the last message). Every delivery has the same size, so a
    subscriber is done when it has read M frames' bytes, and its last bytes must be the
    last payload (checked).

With --latency-subscribers (default: the largest N, 10,000), a separate process sends
GET to the server, one at a time with a 0.5 ms pause, while that fan-out runs, and
reports the worst and the 99th-percentile round trip, with the same probe on the idle
server as the baseline: PUBLISH to 10,000 subscribers must not stall other clients.

The load generator is one process: asyncio (uvloop when installed) with a byte-counting
Protocol per subscriber, so reading costs one callback per recv, not per message. Its
CPU time is reported next to each figure: a generator near 100% of one core would be
the limit rather than the server. Servers run in temporary directories and are stopped
by PID (bench/benchlib.py). 10,000 subscribers need about 10,100 file descriptors in
this process and in redis-server: RLIMIT_NOFILE is raised to the hard limit, and the
script stops if that is too low.

Writes fanout.json and fanout.md to --out (default bench/results/<ts>-fanout).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.connection
import os
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from interpreter import use_repo_venv  # noqa: E402

if __name__ == "__main__":
    use_repo_venv()  # before any third-party import: may re-exec under .venv/bin/python

import benchlib  # noqa: E402
import psutil  # noqa: E402
from benchlib import BENCH_DIR, HOST, Server, encode_command  # noqa: E402

CHANNEL = b"fanout"
PAYLOAD_FORMAT = b"%016d"  # fixed width: every message frame has the same size
CONNECT_CONCURRENCY = 256
PHASE_TIMEOUT_S = 120.0
PROBE_PAUSE_S = 0.0005
FDS_PER_SUBSCRIBER = 1
FD_MARGIN = 200


def message_frame(payload: bytes) -> bytes:
    return b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(CHANNEL), CHANNEL, len(payload), payload)


SUBSCRIBE_REPLY = b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(CHANNEL), CHANNEL)


class Subscriber(asyncio.Protocol):
    """Counts bytes: `want` bytes complete the current phase; keeps the last bytes read."""

    def __init__(self, run: FanoutRun) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.got = 0
        self.want = len(SUBSCRIBE_REPLY)
        self.tail = b""
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  (uvloop's is not an asyncio.Transport subclass)
        self.transport.write(encode_command("SUBSCRIBE", CHANNEL))

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        self.tail = (self.tail + data[-64:])[-64:]
        if self.got >= self.want and not self.done.done():
            self.done.set_result(None)
            self.run.subscriber_done(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionError("closed by the server")
        if not self.done.done():
            self.done.set_exception(self.lost)

    def expect(self, nbytes: int) -> None:
        self.got = 0
        self.want = nbytes
        self.tail = b""
        self.done = asyncio.get_running_loop().create_future()


class FanoutRun:
    def __init__(self) -> None:
        self.remaining = 0
        self.last_done_at = 0.0
        self.all_done: asyncio.Event = asyncio.Event()

    def subscriber_done(self, sub: Subscriber) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self.last_done_at = time.perf_counter()
            self.all_done.set()


class Publisher(asyncio.Protocol):
    """Pipelined PUBLISH: replies are counted (each must be `:N`)."""

    def __init__(self, receivers: int) -> None:
        self.reply = b":%d\r\n" % receivers
        self.buf = bytearray()
        self.replies = 0
        self.bad: bytes | None = None
        self.changed = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        n = len(self.buf) // len(self.reply)
        chunk = bytes(self.buf[: n * len(self.reply)])
        if chunk != self.reply * n and self.bad is None:
            self.bad = chunk[:200]
        del self.buf[: n * len(self.reply)]
        self.replies += n
        self.changed.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.bad = self.bad or b"connection lost"
        self.changed.set()


async def wait_for(cond: Any, what: str, timeout: float = PHASE_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.01)


async def numsub(port: int) -> int:
    """PUBSUB NUMSUB of the channel (the reply is *2, $6, fanout, :N)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(encode_command("PUBSUB", "NUMSUB", CHANNEL))
    await writer.drain()
    data = b""
    while data.count(b"\r\n") < 4:
        chunk = await reader.read(4096)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    writer.close()
    return int(data.split(b"\r\n")[3][1:])


async def connect_subscribers(port: int, count: int, run: FanoutRun) -> list[Subscriber]:
    loop = asyncio.get_running_loop()
    subs: list[Subscriber] = []
    sem = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> None:
        async with sem:
            _, sub = await loop.create_connection(lambda: Subscriber(run), HOST, port)
            subs.append(sub)
            await asyncio.wait_for(sub.done, PHASE_TIMEOUT_S)
            if sub.tail != SUBSCRIBE_REPLY:
                raise RuntimeError(f"SUBSCRIBE answered {sub.tail!r}")

    run.remaining = count
    await asyncio.gather(*(one() for _ in range(count)))
    got = await numsub(port)
    if got != count:
        # Subscriptions made on other workers are counted once the writer has them.
        deadline = time.monotonic() + PHASE_TIMEOUT_S
        while got != count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            got = await numsub(port)
        if got != count:
            raise RuntimeError(f"PUBSUB NUMSUB is {got}, expected {count}")
    return subs


def probe_process(port: int, conn: multiprocessing.connection.Connection) -> None:
    """GET round trips, one at a time, until told to stop; sends back the latencies (s)."""
    sock = socket.create_connection((HOST, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = encode_command("GET", "probe:key")
    samples: list[float] = []
    conn.send("ready")
    conn.recv()  # "go"
    while not conn.poll():
        t0 = time.perf_counter()
        sock.sendall(request)
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        samples.append(time.perf_counter() - t0)
        time.sleep(PROBE_PAUSE_S)
    sock.close()
    conn.send(samples)


class Probe:
    def __init__(self, port: int) -> None:
        self.conn, child = multiprocessing.Pipe()
        self.proc = multiprocessing.get_context("fork").Process(target=probe_process, args=(port, child), daemon=True)
        self.proc.start()
        if not self.conn.poll(30) or self.conn.recv() != "ready":
            raise RuntimeError("latency probe did not start")

    def start(self) -> None:
        self.conn.send("go")

    def stop(self) -> dict[str, float]:
        self.conn.send("stop")
        if not self.conn.poll(30):
            raise RuntimeError("latency probe did not answer")
        samples = sorted(self.conn.recv())
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(10)
        if not samples:
            return {"samples": 0, "max_ms": float("nan"), "p99_ms": float("nan"), "p50_ms": float("nan")}
        return {"samples": len(samples), "max_ms": samples[-1] * 1e3,
                "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1e3,
                "p50_ms": samples[len(samples) // 2] * 1e3}


async def one_fanout(port: int, subs: list[Subscriber], run: FanoutRun, messages: int, batch: int,
                     window: int, probe: Probe | None, server_procs: list[psutil.Process]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    n = len(subs)
    last_payload = PAYLOAD_FORMAT % (messages - 1)
    frame_len = len(message_frame(last_payload))
    for sub in subs:
        sub.expect(messages * frame_len)
    run.remaining = n
    run.all_done = asyncio.Event()
    transport, pub = await loop.create_connection(lambda: Publisher(n), HOST, port)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # Every PUBLISH is encoded before the clock starts: the generator only writes.
    prefix = b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n" % (len(CHANNEL), CHANNEL, len(last_payload))
    batches = [b"".join(prefix + PAYLOAD_FORMAT % i + b"\r\n" for i in range(start, min(start + batch, messages)))
               for start in range(0, messages, batch)]
    server_cpu0 = server_cpu(server_procs)
    cpu0 = time.process_time()
    if probe is not None:
        probe.start()
    t0 = time.perf_counter()
    sent = 0
    for chunk in batches:
        while sent - pub.replies >= window * batch:
            pub.changed.clear()
            await asyncio.wait_for(pub.changed.wait(), PHASE_TIMEOUT_S)
            if pub.bad is not None:
                raise RuntimeError(f"PUBLISH answered {pub.bad!r}, expected {pub.reply!r}")
        transport.write(chunk)
        sent += min(batch, messages - sent)
    await asyncio.wait_for(run.all_done.wait(), PHASE_TIMEOUT_S)
    elapsed = run.last_done_at - t0
    cpu = time.process_time() - cpu0
    server_cpu1 = server_cpu(server_procs)
    shares = sorted(((server_cpu1[pid] - server_cpu0.get(pid, 0.0)) / elapsed for pid in server_cpu1), reverse=True)
    latency = probe.stop() if probe is not None else None
    await wait_for(lambda: pub.replies >= messages or pub.bad is not None, "PUBLISH replies")
    transport.close()
    if pub.bad is not None:
        raise RuntimeError(f"PUBLISH answered {pub.bad!r}, expected {pub.reply!r}")
    for sub in subs:
        if sub.lost is not None:
            raise RuntimeError(f"a subscriber was disconnected: {sub.lost}")
        if not sub.tail.endswith(message_frame(last_payload)) or sub.got != messages * frame_len:
            raise RuntimeError(f"a subscriber got {sub.got} bytes ending {sub.tail!r}")
    return {"subscribers": n, "messages": messages, "deliveries": n * messages, "seconds": elapsed,
            "deliveries_per_s": n * messages / elapsed, "messages_per_s": messages / elapsed,
            "generator_cpu_share": cpu / elapsed,
            "server_cpu_share": (sum(server_cpu1.values()) - sum(server_cpu0.values())) / elapsed,
            "busiest_server_process_share": shares[0] if shares else 0.0,
            "server_process_shares": shares, "latency": latency}


def server_cpu(procs: list[psutil.Process]) -> dict[int, float]:
    """CPU seconds (user + system) of each server process."""
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return out


async def bench_all(servers: list[Server], counts: list[int], args: argparse.Namespace,
                    probe_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Interleaved: for each N and each repeat, every server in turn (fresh subscribers
    each time), so that a change in the machine's load hits both servers alike."""
    rows = []
    for n in counts:
        messages = max(args.min_messages, args.deliveries // n)
        # The first pass warms up; with the probe, one more pass publishes one message at a time
        # (--latency-window unanswered): a GET then waits behind that much fan-out at most.
        probing = n == args.latency_subscribers
        for rep in range(args.repeats + 1 + probing):
            for server in servers:
                run = FanoutRun()
                subs = await connect_subscribers(server.port, n, run)
                try:
                    with_probe = probing and rep == args.repeats + 1
                    probe = Probe(server.port) if with_probe else None
                    batch, window = (1, args.latency_window) if with_probe else (args.batch, args.window)
                    row = await one_fanout(server.port, subs, run, messages, batch, window, probe,
                                           server.processes())
                finally:
                    for sub in subs:
                        if sub.transport is not None:
                            sub.transport.close()
                await wait_for_numsub_zero(server.port)
                row.update(server=server.label, repeat=rep, load_average=os.getloadavg()[0],
                           batch=batch, window=window)
                if with_probe:
                    probe_rows.append(row)
                elif rep > 0:
                    rows.append(row)
                lat = row["latency"]
                print(f"  {server.label:14} N={n:>6} M={messages:>7} {'warm-up' if rep == 0 else 'probe' if with_probe else f'rep {rep}':8} "
                      f"{row['deliveries_per_s'] / 1e6:7.3f} M deliveries/s in {row['seconds']:.3f} s, "
                      f"CPU: generator {row['generator_cpu_share']:.0%}, server {row['server_cpu_share']:.0%} "
                      f"(per process {' '.join(f'{x:.0%}' for x in row['server_process_shares'])}), "
                      f"load {row['load_average']:.1f}"
                      + (f", GET worst {lat['max_ms']:.1f} ms p99 {lat['p99_ms']:.2f} ms ({lat['samples']})"
                         if lat else ""), flush=True)
    return rows


async def wait_for_numsub_zero(port: int) -> None:
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while await numsub(port) != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("subscribers still counted after they closed")
        await asyncio.sleep(0.05)


def idle_latency(server: Server, seconds: float) -> dict[str, float]:
    probe = Probe(server.port)
    probe.start()
    time.sleep(seconds)  # the probe's measuring window on the idle server (a duration, not a wait)
    return probe.stop()


def raise_nofile(needed: int) -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        sys.exit(f"error: {needed} file descriptors needed, RLIMIT_NOFILE is {soft} (hard {hard}); "
                 f"raise the hard limit (ulimit -Hn) or use fewer --subscribers")
    return soft, hard


def markdown(rows: list[dict[str, Any]], probe_rows: list[dict[str, Any]], idle: dict[str, dict[str, float]],
             args: argparse.Namespace,
             info: dict[str, object]) -> str:
    by: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        by.setdefault((row["server"], row["subscribers"]), []).append(row)
    labels = list(dict.fromkeys(row["server"] for row in rows))
    counts = sorted({row["subscribers"] for row in rows})
    kv, rd = labels[0], labels[-1]
    lines = [f"Deliveries per second (median of {args.repeats}), {args.payload} payload bytes, "
             f"one publisher pipelining batches of {args.batch}:", "",
             f"| subscribers | messages | {kv} | {rd} | ratio | server CPU, cores ({kv} / {rd}) "
             f"| generator CPU ({kv} / {rd}) |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for n in counts:
        k = benchlib.median([r["deliveries_per_s"] for r in by[(kv, n)]])
        r_ = benchlib.median([r["deliveries_per_s"] for r in by[(rd, n)]])
        kc = benchlib.median([r["generator_cpu_share"] for r in by[(kv, n)]])
        rc = benchlib.median([r["generator_cpu_share"] for r in by[(rd, n)]])
        ks = benchlib.median([r["server_cpu_share"] for r in by[(kv, n)]])
        rs = benchlib.median([r["server_cpu_share"] for r in by[(rd, n)]])
        lines.append(f"| {n:,} | {by[(kv, n)][0]['messages']:,} | {k / 1e6:.3f} M/s | {r_ / 1e6:.3f} M/s | "
                     f"{k / r_:.3f} | {ks:.2f} / {rs:.2f} | {kc:.0%} / {rc:.0%} |")
    if probe_rows:
        lines += ["", f"GET round trip of another client while {probe_rows[0]['messages']} messages fan out to "
                  f"{args.latency_subscribers:,} subscribers, published one at a time with at most "
                  f"{args.latency_window} unanswered (and on the idle server):", "",
                  "| server | deliveries/s | worst GET | p99 | p50 | GETs | idle worst | idle p99 |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in sorted(probe_rows, key=lambda r: 0 if r["server"].startswith("kvred") else 1):
            lat, base = r["latency"], idle[r["server"]]
            lines.append(f"| {r['server']} | {r['deliveries_per_s'] / 1e6:.3f} M/s | {lat['max_ms']:.1f} ms "
                         f"| {lat['p99_ms']:.2f} ms | {lat['p50_ms']:.2f} ms | {lat['samples']} "
                         f"| {base['max_ms']:.1f} ms | {base['p99_ms']:.2f} ms |")
    lines += ["", "Machine:", "", benchlib.machine_markdown(info)]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subscribers", default="1,100,10000", help="comma-separated N")
    ap.add_argument("--deliveries", type=int, default=1_000_000, help="N × M per run: M = this / N")
    ap.add_argument("--min-messages", type=int, default=50, help="M at least this")
    ap.add_argument("--payload", type=int, default=16, choices=[16], help="payload bytes (fixed)")
    ap.add_argument("--batch", type=int, default=1000, help="PUBLISH commands per write")
    ap.add_argument("--window", type=int, default=8, help="batches unanswered at most")
    ap.add_argument("--repeats", type=int, default=2, help="measured runs per N (after one warm-up)")
    ap.add_argument("--workers", type=int, default=2, help="kvred --workers")
    ap.add_argument("--latency-subscribers", type=int, default=None,
                    help="N of the run with the GET probe (default: the largest N; 0: none)")
    ap.add_argument("--latency-window", type=int, default=2, help="PUBLISH unanswered at most in the probe run")
    ap.add_argument("--idle-probe-seconds", type=float, default=2.0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    counts = [int(x) for x in args.subscribers.split(",")]
    if args.latency_subscribers is None:
        args.latency_subscribers = max(counts)
    soft, hard = raise_nofile(max(counts) * FDS_PER_SUBSCRIBER + FD_MARGIN)
    print(f"RLIMIT_NOFILE {soft} (hard {hard})")
    out = args.out or BENCH_DIR / "results" / f"{benchlib.timestamp()}-fanout"
    out.mkdir(parents=True, exist_ok=True)
    info = benchlib.machine_info()
    maxclients = str(max(counts) + FD_MARGIN)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    rows: list[dict[str, Any]] = []
    probe_rows: list[dict[str, Any]] = []
    idle: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="kvred-fanout-") as tmp:
        servers: list[Server] = []
        try:
            # redis-server first in each round: its figures show whether the generator keeps up.
            for i, make in enumerate([
                lambda d: benchlib.redis_server(d, "everysec", extra=["--maxclients", maxclients]),
                lambda d: benchlib.kvred_server(d, args.workers, "everysec", extra=["--maxclients", maxclients]),
            ]):
                workdir = Path(tmp) / str(i)
                workdir.mkdir()
                servers.append(make(workdir).start())
                print(f"{servers[-1].label}: {servers[-1].command}", flush=True)
            for server in servers:
                benchlib.simple_command(server.port, "SET", "probe:key", "x" * 16)
                idle[server.label] = idle_latency(server, args.idle_probe_seconds)
            rows = asyncio.run(bench_all(servers, counts, args, probe_rows))
        finally:
            for server in servers:
                server.stop()
    rows.sort(key=lambda r: 0 if r["server"].startswith("kvred") else 1)
    text = markdown(rows, probe_rows, idle, args, info)
    (out / "fanout.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                 "machine": info, "idle_latency": idle, "rows": rows,
                                                 "probe_rows": probe_rows}, indent=1))
    (out / "fanout.md").write_text(text)
    print()
    print(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
