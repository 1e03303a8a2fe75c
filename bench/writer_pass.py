#!/usr/bin/env python3
"""The writer's cost per command, in one process: no worker, no load generator, no noise.

    python bench/writer_pass.py                      # SET and GET, 18 one-command entries per pass (P1)
    python bench/writer_pass.py --entries 50 --commands 16 --kind get      # c50 P16
    python bench/writer_pass.py --callgrind          # instructions per command (valgrind)
    python bench/writer_pass.py --tree /tmp/before   # another checkout: before/after

A pass is what the writer does for one frame from a worker: `Writer._read_link` (recv,
msgpack decode, run every entry), `_commit_pass` (AOF write, reply frames) and `_send`.
The frame holds `--entries` clients' entries of `--commands` commands each (the writer
sees ~18 one-command entries per pass under `redis-benchmark -c 50 -P 1`: its send
count per request in /proc/<pid>/io), over 100,000 keys; the other end of the
socketpair plays the worker and reads the replies.

Wall time per command is what this machine does now (noisy on a shared VM); with
--callgrind the script runs itself twice under valgrind (ROUNDS and 3 x ROUNDS passes)
and prints the difference in instructions per command: start-up cancels out and the
figure repeats to within ~0.1%, which is what a change to the hot path is judged by
(bench/README.md, "The writer's cost per command").
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from interpreter import use_repo_venv  # noqa: E402

if __name__ == "__main__":
    use_repo_venv()  # before any third-party import: may re-exec under .venv/bin/python

REPO_ROOT = Path(__file__).resolve().parent.parent
KEYS = 100_000
FRAMES = 64  # distinct frames, cycled (different keys per pass)


def run_passes(rounds: int, entries: int, commands: int, kind: str, appendonly: bool) -> float:
    """Seconds per command over `rounds` passes (after one warm-up cycle)."""
    import selectors
    import socket

    from kvred import ipc
    from kvred.aof import AppendOnlyFile
    from kvred.config import Config
    from kvred.writer import Link, Writer

    tmp = tempfile.mkdtemp(prefix="kvred-pass-")
    try:
        writer = Writer(Config(appendonly=appendonly, dir=tmp, fsync="no"), socket.socketpair()[0])
        if appendonly:  # as Writer.run opens it
            writer.aof = AppendOnlyFile(writer.config.aof_path, "no")
            writer.aof.open()
            writer.executor.log_into(writer.aof.aof_buf)
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        link = Link(ours, 0)
        writer.links.append(link)
        writer._selector = selectors.DefaultSelector()
        writer._selector.register(ours, selectors.EVENT_READ, link)
        frames = []
        for r in range(FRAMES):
            batch = []
            for e in range(entries):
                payload = []
                for c in range(commands):
                    key = b"key:%012d" % ((r * 977 + e * 31 + c) % KEYS)
                    write = kind == "set" or (kind == "mix" and c % 2 == 0)
                    payload.append([b"SET", key, b"xxx"] if write else [b"GET", key])
                batch.append([ipc.OP_RUN, e + 1, False, payload])
            frames.append(bytes(ipc.encode_frame(batch)))
        connects = [[ipc.OP_CONNECT, e + 1, False, [f"127.0.0.1:{e + 1000}", "127.0.0.1:6380", 10 + e]]
                    for e in range(entries)]
        fill = [[ipc.OP_RUN, 1, False, [[b"SET", b"key:%012d" % k, b"xxx"] for k in range(KEYS)]]]

        def one(frame: bytes) -> None:
            theirs.sendall(frame)
            writer._read_link(link)
            for out in writer._commit_pass():
                writer._send(out)
            while True:  # the replies: one frame, read whole
                data = theirs.recv(1 << 22)
                if len(data) >= 4 and len(data) == int.from_bytes(data[:4], "little") + 4 or not data:
                    break

        one(bytes(ipc.encode_frame(connects)))
        writer._run_batch(fill, link)  # the keys GET reads (straight in: larger than a socket buffer)
        writer._commit_pass()
        link.out.clear()
        for frame in frames:
            one(frame)
        started = time.perf_counter()
        for i in range(rounds):
            one(frames[i % FRAMES])
        return (time.perf_counter() - started) / (rounds * entries * commands)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def callgrind(tree: Path, args: argparse.Namespace) -> float:
    """Instructions per command: (cost of 3R passes - cost of R passes) / (2R x commands)."""
    if not shutil.which("valgrind"):
        sys.exit("--callgrind needs valgrind (apt-get install valgrind)")
    counts = []
    for rounds in (args.rounds, 3 * args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg", sys.executable, __file__,
                    "--inner", "--rounds", str(rounds), "--entries", str(args.entries),
                    "--commands", str(args.commands), "--kind", args.kind] + (["--aof"] if args.aof else [])
            env = dict(os.environ, PYTHONPATH=str(tree))
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=3600)
            found = re.search(r"Collected : (\d+)", proc.stderr)
            if proc.returncode or not found:
                sys.exit(f"valgrind failed: {proc.stderr[-2000:]}")
            counts.append(int(found.group(1)))
    return (counts[1] - counts[0]) / (2 * args.rounds * args.entries * args.commands)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=18, help="entries (clients) per pass")
    ap.add_argument("--commands", type=int, default=1, help="commands per entry (the pipeline depth)")
    ap.add_argument("--kind", choices=["set", "get", "mix"], default=None, help="default: set, then get")
    ap.add_argument("--rounds", type=int, default=None, help="passes (default: 20000 wall, 1000 callgrind)")
    ap.add_argument("--aof", action="store_true", help="with an AOF (appendfsync no) in a temporary directory")
    ap.add_argument("--callgrind", action="store_true", help="instructions per command, under valgrind")
    ap.add_argument("--tree", type=Path, default=REPO_ROOT, help="the kvred checkout to measure")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    kinds = [args.kind] if args.kind else ["set", "get"]
    if args.inner:
        run_passes(args.rounds, args.entries, args.commands, kinds[0], args.aof)
        return
    tree = args.tree.resolve()
    for kind in kinds:
        args.kind = kind
        label = f"{kind} x{args.commands} per entry, {args.entries} entries per pass{' +AOF' if args.aof else ''}"
        if args.callgrind:
            args.rounds = args.rounds or 1000
            print(f"{label}: {callgrind(tree, args):,.0f} instructions/command ({tree})", flush=True)
        else:
            sys.path.insert(0, str(tree))
            seconds = run_passes(args.rounds or 20_000, args.entries, args.commands, kind, args.aof)
            print(f"{label}: {seconds * 1e9:,.0f} ns/command ({tree})", flush=True)


if __name__ == "__main__":
    main()
