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
from typing import Any

from .commands import COMMANDS, lookup
from .commands.base import Handler
from .config import plural
from .fastparse import has_large_count
from .resp import RequestParser, encode_command

try:
    import hiredis
except ImportError:  # the pure-Python parser is the reference; hiredis only makes replay faster
    hiredis = None  # type: ignore[assignment]

__all__ = ["AofScan", "scan_aof", "check_aof_main"]

log = logging.getLogger("kvred.replay")

READ_CHUNK_BYTES = 4 * 1024 * 1024
PROGRESS_EVERY_S = 2.0
HIREDIS_FEED_BYTES = 64 * 1024
_COUNT_PATTERN_TAIL = 5  # has_large_count looks for 6 bytes: 5 of them may end the previous feed


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


class AofCommandReader:
    """Commands of an AOF, fast: hiredis's C reader, checked against the canonical form.

    Each command hiredis returns is re-encoded and compared with the bytes it
    came from; only if they are identical is it accepted, so what this reader
    accepts is exactly what the strict `RequestParser` accepts. At the first
    byte that is not canonical (or that hiredis refuses) the rest of the file
    goes to `RequestParser(strict=True)`, which gives the error, its offset,
    or the torn tail. Measured on 1M SETs of 100 bytes: 0.9 s instead of 2.4 s.
    """

    def __init__(self) -> None:
        self._hiredis: Any = hiredis.Reader() if hiredis is not None else None
        self._raw = b""  # bytes fed to hiredis and not yet matched to a command
        self._fed_tail = b""  # the last bytes fed to hiredis (see has_large_count)
        self.command_end = 0  # stream offset just after the last complete command
        self._parser: RequestParser | None = None if self._hiredis is not None else RequestParser(strict=True)

    @property
    def error(self) -> bytes | None:
        return self._parser.error if self._parser is not None else None

    @property
    def in_command(self) -> bool:
        return bool(self._raw) if self._parser is None else self._parser.in_command

    def feed(self, chunk: bytes) -> list[list[bytes]]:
        if self._parser is not None:
            parsed = self._parser.feed(chunk)
            self.command_end = self._parser.command_end
            return parsed
        raw = self._raw + chunk if self._raw else chunk
        reader = self._hiredis
        commands: list[list[bytes]] = []
        pos = 0
        # hiredis moves its unread buffer after every reply: small feeds keep that cheap
        # (one 4 MB feed made replay 3x slower than the pure-Python parser)
        for piece in range(0, len(chunk), HIREDIS_FEED_BYTES):
            piece_bytes = chunk[piece : piece + HIREDIS_FEED_BYTES]
            # with the end of the previous feed: a header cut by the feed boundary counts too
            if has_large_count(self._fed_tail + piece_bytes):
                # hiredis would allocate a huge declared array: the strict parser takes over
                # from the next unread command (it reads lengths before allocating)
                return self._fall_back(commands, raw, pos)
            reader.feed(piece_bytes)
            self._fed_tail = piece_bytes[-_COUNT_PATTERN_TAIL:]
            while True:
                try:
                    item = reader.gets()
                except Exception:  # ProtocolError, or a RESP3 map with a list as key (TypeError)
                    item = None
                if item is False:
                    break
                encoded = _canonical(item)
                if encoded is None or not raw.startswith(encoded, pos):
                    # not canonical from here on: the strict parser takes over, from this command
                    return self._fall_back(commands, raw, pos)
                commands.append(item)
                pos += len(encoded)
        self._raw = raw[pos:]
        self.command_end += pos
        return commands

    def _fall_back(self, commands: list[list[bytes]], raw: bytes, pos: int) -> list[list[bytes]]:
        """Hand everything from raw[pos] (a command start) on to the strict parser."""
        self._parser = RequestParser(strict=True, base_offset=self.command_end + pos)
        commands += self._parser.feed(raw[pos:])
        self.command_end = self._parser.command_end
        self._raw = b""
        return commands


def _canonical(item: object) -> bytes | None:
    """The canonical encoding of a hiredis item that is a command (a list of bytes), else None."""
    if type(item) is not list or not item:
        return None
    try:
        return encode_command(item)  # an int, None or nested list among the args raises TypeError
    except TypeError:
        return None


def scan_aof(path: str, execute: Callable[[Handler, list[bytes]], object] | None = None) -> AofScan:
    """Parse (and, with `execute(handler, argv)`, apply) the AOF at `path`.

    Every command is looked up and arity-checked here; `execute` gets the
    handler and runs it without checking again. Offsets come from the parser
    (`command_end`); a single command's offset is computed only for an error
    or a MULTI, which keeps the per-command cost of a large replay low.
    """
    scan = AofScan(size=os.path.getsize(path))
    parser = AofCommandReader()
    commands_get = COMMANDS.get
    block: list[tuple[Handler, list[bytes]]] | None = None  # commands of an open MULTI
    count = 0
    started = last_report = time.monotonic()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(READ_CHUNK_BYTES)
            if not chunk:
                break
            batch_start = parser.command_end  # where the first command of this batch starts
            batch = parser.feed(chunk)
            for i, argv in enumerate(batch):
                cmd = commands_get(argv[0]) or lookup(argv[0])
                if cmd is None or not cmd.min_argc <= len(argv) <= cmd.max_argc:
                    what = "unknown command" if cmd is None else "wrong number of arguments for"
                    scan.error = f"{what} '{argv[0].decode(errors='replace')}'"
                    scan.error_offset = _offset_in(batch, i, batch_start)
                    return _stopped(scan, count, block is None)
                handler = cmd.handler
                if handler is not None:
                    if block is None:
                        if execute is not None:
                            execute(handler, argv)
                        count += 1
                    else:
                        block.append((handler, argv))
                    continue
                # a connection command: only MULTI/EXEC blocks belong in an AOF
                offset = _offset_in(batch, i, batch_start)
                if cmd.name == "multi" and block is None:
                    block = []
                    scan.valid_up_to = offset  # a torn block is cut here
                elif cmd.name == "exec" and block is not None:
                    if execute is not None:
                        for queued_handler, queued in block:
                            execute(queued_handler, queued)
                    count += len(block)
                    block = None
                else:
                    scan.error, scan.error_offset = f"unexpected '{cmd.name.upper()}'", offset
                    return _stopped(scan, count, block is None)
            if parser.error is not None:
                scan.error = parser.error[5:-2].decode(errors="replace")  # drop "-ERR " and CRLF
                scan.error_offset = parser.command_end
                return _stopped(scan, count, block is None)
            if block is None:
                scan.valid_up_to = parser.command_end
            now = time.monotonic()
            if now - last_report >= PROGRESS_EVERY_S:
                last_report = now
                done = f.tell()
                log.info(
                    "loading AOF: %d%%, %s, %.1f MB/s",
                    100 * done // max(scan.size, 1),
                    plural(count, "command"),
                    done / (now - started) / 1e6,
                )
    scan.commands = count
    if parser.in_command or block is not None:
        scan.torn_tail = True
    return scan


def _stopped(scan: AofScan, count: int, outside_block: bool) -> AofScan:
    """Corruption at scan.error_offset: what comes before it (outside a MULTI) is valid."""
    scan.commands = count
    if outside_block:
        scan.valid_up_to = scan.error_offset
    return scan


def _offset_in(batch: list[list[bytes]], index: int, batch_start: int) -> int:
    """Stream offset of batch[index], from the canonical length of those before it."""
    return batch_start + sum(_encoded_len(argv) for argv in batch[:index])


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
