"""Reading an AOF back: start-up replay and `kvred check-aof [--fix] FILE`.

The file is parsed by the same `RequestParser` as client traffic (in strict
multibulk mode, as Redis's loader is) and every command goes through the same
lookup, arity check and handler as live commands.

- A torn tail (the last command incomplete, or a MULTI without its EXEC:
  a crash mid-write) is loaded up to the last complete command; the caller
  truncates the file there and logs the offset (Redis's aof-load-truncated).
- Anything else (garbage, unknown command, bad arity) is corruption: loading
  stops with the byte offset, and the file is left untouched.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from .commands import lookup
from .resp import RequestParser

__all__ = ["AofScan", "scan_aof", "check_aof_main"]

log = logging.getLogger("kvred.replay")

READ_CHUNK_BYTES = 4 * 1024 * 1024
PROGRESS_EVERY_S = 2.0


@dataclass
class AofScan:
    size: int = 0  # bytes in the file
    commands: int = 0  # complete commands applied (MULTI/EXEC not counted)
    valid_up_to: int = 0  # offset just after the last complete command (or block)
    torn_tail: bool = False  # bytes after valid_up_to are an incomplete command or block
    error: str | None = None  # corruption: what is wrong
    error_offset: int = 0  # ...and where it starts

    @property
    def ok(self) -> bool:
        return self.error is None and not self.torn_tail


def _encoded_len(argv: list[bytes]) -> int:
    """Bytes of argv as the strict parser accepted it (canonical multibulk)."""
    total = len(str(len(argv))) + 3
    for arg in argv:
        total += len(str(len(arg))) + len(arg) + 5
    return total


def scan_aof(path: str, execute: Callable[[list[bytes]], object] | None = None) -> AofScan:
    """Parse (and, with `execute`, apply) the AOF at `path`."""
    scan = AofScan(size=os.path.getsize(path))
    parser = RequestParser(strict=True)
    offset = 0  # where the next command starts
    block: list[list[bytes]] | None = None  # commands of an open MULTI
    started = last_report = time.monotonic()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(READ_CHUNK_BYTES)
            if not chunk:
                break
            for argv in parser.feed(chunk):
                length = _encoded_len(argv)
                name = argv[0].lower()
                cmd = lookup(argv[0])
                if (
                    cmd is None
                    or not cmd.arity_ok(len(argv))
                    or (cmd.handler is None and name not in (b"multi", b"exec"))
                ):
                    what = "unknown command" if cmd is None else "wrong number of arguments for"
                    scan.error = f"{what} '{argv[0].decode(errors='replace')}'"
                    scan.error_offset = offset
                    return scan
                if name == b"multi":
                    if block is not None:
                        scan.error, scan.error_offset = "nested MULTI", offset
                        return scan
                    block = []
                elif name == b"exec":
                    if block is None:
                        scan.error, scan.error_offset = "EXEC without MULTI", offset
                        return scan
                    if execute is not None:
                        for queued in block:
                            execute(queued)
                    scan.commands += len(block)
                    block = None
                    scan.valid_up_to = offset + length
                elif block is not None:
                    block.append(argv)
                else:
                    if execute is not None:
                        execute(argv)
                    scan.commands += 1
                    scan.valid_up_to = offset + length
                offset += length
            if parser.error is not None:
                scan.error = parser.error[5:-2].decode(errors="replace")  # drop "-ERR " and CRLF
                scan.error_offset = offset
                return scan
            now = time.monotonic()
            if now - last_report >= PROGRESS_EVERY_S:
                last_report = now
                done = f.tell()
                log.info(
                    "loading AOF: %d%%, %d commands, %.1f MB/s",
                    100 * done // max(scan.size, 1),
                    scan.commands,
                    done / (now - started) / 1e6,
                )
    if parser.in_command or block is not None:
        scan.torn_tail = True
    return scan


def check_aof_main(argv: list[str]) -> int:
    """`kvred check-aof [--fix] FILE`: report, and with --fix truncate a torn or bad tail."""
    args = [a for a in argv if a != "--fix"]
    fix = "--fix" in argv
    if len(args) != 1 or args[0].startswith("-"):
        sys.stderr.write("usage: kvred check-aof [--fix] FILE\n")
        return 2
    path = args[0]
    if not os.path.isfile(path):
        sys.stderr.write(f"kvred check-aof: no such file: {path}\n")
        return 2
    scan = scan_aof(path)
    if scan.ok:
        print(f"AOF {path} is valid: {scan.commands} commands, {scan.size} bytes")
        return 0
    if scan.error is not None:
        print(f"AOF {path} is not valid: {scan.error} at offset {scan.error_offset}")
    else:
        print(f"AOF {path} has a torn tail: an incomplete command after offset {scan.valid_up_to}")
    cut = scan.valid_up_to  # the end of the last complete command (or MULTI/EXEC block)
    print(f"{scan.commands} valid commands; the first {cut} bytes are valid, {scan.size - cut} bytes are not")
    if not fix:
        print(f"run 'kvred check-aof --fix {path}' to truncate the file to its valid part")
        return 1
    backup = f"{path}.bak.{int(time.time())}"
    shutil.copy2(path, backup)
    with open(path, "r+b") as f:
        f.truncate(cut)
        f.flush()
        os.fsync(f.fileno())
    print(f"kept a copy in {backup}; truncated {path} to {cut} bytes: it is now valid")
    return 0
