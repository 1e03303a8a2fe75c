"""Keyspace commands: DEL, EXISTS, KEYS, SCAN, RENAME, TYPE, FLUSHALL, ..."""

from __future__ import annotations

import random
import re
from typing import Any

from .. import resp
from ..glob import compile_glob
from .base import ERR_NOT_INT, ERR_SYNTAX, ReplyTooLarge, command, int_arg

__all__ = ["ScanCursors", "RandomKeys"]

OK = resp.OK


@command("del", -2, "write", (1, -1, 1))
def del_(ctx: Any, argv: list[bytes]) -> bytes:
    db = ctx.db
    deleted = []
    for key in argv[1:]:
        if db.pop(key, None) is not None:
            deleted.append(key)
    if deleted:
        ctx.aof_feed([b"DEL", *deleted])
    return b":%d\r\n" % len(deleted)


@command("unlink", -2, "write fast", (1, -1, 1))
def unlink(ctx: Any, argv: list[bytes]) -> bytes:
    return del_(ctx, argv)


@command("exists", -2, "readonly fast", (1, -1, 1))
def exists(ctx: Any, argv: list[bytes]) -> bytes:
    db = ctx.db
    return b":%d\r\n" % sum(1 for key in argv[1:] if key in db)  # duplicates count twice, as Redis


@command("touch", -2, "readonly fast", (1, -1, 1))
def touch(ctx: Any, argv: list[bytes]) -> bytes:
    return exists(ctx, argv)


def type_name(value: object) -> bytes:
    return b"string" if type(value) in (bytes, bytearray) else b"none"


@command("type", 2, "readonly fast", (1, 1, 1))
def type_(ctx: Any, argv: list[bytes]) -> bytes:
    value = ctx.db.get(argv[1])
    return b"+" + (b"none" if value is None else type_name(value)) + b"\r\n"


@command("dbsize", 1, "readonly fast")
def dbsize(ctx: Any, argv: list[bytes]) -> bytes:
    return resp.integer(len(ctx.db))


def _flush(ctx: Any, argv: list[bytes]) -> bytes:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() not in (b"async", b"sync")):
        return ERR_SYNTAX
    ctx.db.clear()
    ctx.scan_cursors.clear()
    ctx.random_keys.clear()
    ctx.aof_feed([argv[0]])  # always logged, as Redis does, even on an empty keyspace
    return OK


@command("flushdb", -1, "write")
def flushdb(ctx: Any, argv: list[bytes]) -> bytes:
    return _flush(ctx, argv)


@command("flushall", -1, "write")
def flushall(ctx: Any, argv: list[bytes]) -> bytes:
    return _flush(ctx, argv)


@command("keys", 2, "readonly")
def keys(ctx: Any, argv: list[bytes]) -> bytes:
    pattern = compile_glob(argv[1])
    db = ctx.db
    if pattern.matches_everything:
        found: list[bytes] = list(db)
    elif pattern.literal is not None:
        found = [pattern.literal] if pattern.literal in db else []
    else:
        found = pattern.select(db)
    return _key_array(ctx, found)


def _key_array(ctx: Any, found: list[bytes]) -> bytes:
    """An array of keys, built within the client's output limit."""
    limit = ctx.output_limit
    size = 0
    parts = []
    for key in found:
        part = b"$%d\r\n%b\r\n" % (len(key), key)
        parts.append(part)
        size += len(part)
        if size > limit:
            raise ReplyTooLarge
    return b"*%d\r\n" % len(parts) + b"".join(parts)


class ScanCursors:
    """SCAN over a dict that changes between calls.

    Each iteration started with cursor 0 gets a snapshot of the key list; the
    cursor handed back encodes (position << 16 | snapshot slot). Keys present
    for the whole iteration are returned exactly once, which is Redis's
    guarantee; keys deleted meanwhile are skipped. At most MAX_SNAPSHOTS
    iterations are remembered; an older cursor resumes on a fresh snapshot at
    its position (it may then repeat or miss keys, like a Redis rehash).
    """

    MAX_SNAPSHOTS = 64

    def __init__(self) -> None:
        self._snapshots: dict[int, list[bytes]] = {}
        self._next_slot = 1

    def clear(self) -> None:
        self._snapshots.clear()

    def snapshot(self, db: dict[bytes, Any], cursor: int) -> tuple[list[bytes], int, int]:
        """(keys, start position, slot) for `cursor`."""
        slot, position = cursor & 0xFFFF, cursor >> 16
        keys = self._snapshots.get(slot) if cursor else None
        if keys is None:
            if len(self._snapshots) >= self.MAX_SNAPSHOTS:
                del self._snapshots[next(iter(self._snapshots))]
            slot = self._next_slot
            self._next_slot = self._next_slot % 0xFFFF + 1
            keys = self._snapshots[slot] = list(db)
        return keys, position, slot

    def finish(self, slot: int) -> None:
        self._snapshots.pop(slot, None)


_CURSOR = re.compile(rb"([+-]?)0*([0-9]{1,20})")


def parse_cursor(arg: bytes) -> int | None:
    """strtoul as Redis's parseScanCursorOrReply uses it: the argument is a C string
    (it ends at a NUL: "" and "\\0" are cursor 0), a '-' wraps around, and a value
    that does not fit 64 bits is invalid, as is leading space."""
    arg = arg.split(b"\0", 1)[0]
    if arg == b"":
        return 0
    match = _CURSOR.fullmatch(arg)
    if match is None:
        return None
    value = int(match[2])  # at most 20 digits: no big-int work for a long argument
    if value > 2**64 - 1:
        return None
    return (-value if match[1] == b"-" else value) % 2**64


@command("scan", -2, "readonly")
def scan(ctx: Any, argv: list[bytes]) -> bytes:
    cursor = parse_cursor(argv[1])
    if cursor is None:
        return b"-ERR invalid cursor\r\n"
    count, pattern, type_filter = 10, None, None
    i = 2
    while i < len(argv):
        opt = argv[i].lower()
        if i + 1 >= len(argv):
            return ERR_SYNTAX
        if opt == b"count":
            count_arg = int_arg(argv[i + 1])
            if count_arg is None:
                return ERR_NOT_INT
            if count_arg < 1:
                return ERR_SYNTAX
            count = count_arg
        elif opt == b"match":
            pattern = None if argv[i + 1] == b"*" else compile_glob(argv[i + 1])
        elif opt == b"type":
            type_filter = argv[i + 1].lower()
        else:
            return ERR_SYNTAX
        i += 2
    db = ctx.db
    keys_snapshot, position, slot = ctx.scan_cursors.snapshot(db, cursor)
    end = min(position + count, len(keys_snapshot))
    found = []
    for key in keys_snapshot[position:end]:
        value = db.get(key)
        if value is None:
            continue
        if pattern is not None and not pattern.match(key):
            continue
        if type_filter is not None and type_name(value) != type_filter:
            continue
        found.append(resp.bulk(key))
    if end >= len(keys_snapshot):
        ctx.scan_cursors.finish(slot)
        next_cursor = 0
    else:
        next_cursor = end << 16 | slot
    return b"*2\r\n" + resp.bulk(b"%d" % next_cursor) + resp.array(found)


def _rename(ctx: Any, argv: list[bytes], only_if_new: bool) -> bytes:
    db = ctx.db
    src, dst = argv[1], argv[2]
    value = db.get(src)
    if value is None:
        return b"-ERR no such key\r\n"
    if src == dst:
        return b":0\r\n" if only_if_new else OK
    if only_if_new and dst in db:
        return b":0\r\n"
    del db[src]
    db[dst] = value
    ctx.aof_feed(argv)
    return b":1\r\n" if only_if_new else OK


@command("rename", 3, "write", (1, 2, 1))
def rename(ctx: Any, argv: list[bytes]) -> bytes:
    return _rename(ctx, argv, only_if_new=False)


@command("renamenx", 3, "write fast", (1, 2, 1))
def renamenx(ctx: Any, argv: list[bytes]) -> bytes:
    return _rename(ctx, argv, only_if_new=True)


class RandomKeys:
    """Random keys of a dict in O(1) expected time (RANDOMKEY; later eviction sampling).

    A dict has no random access, and walking it to a random position cost 2.7 ms per
    RANDOMKEY on 1M keys. So a list of the keys is taken and reused: a pick no longer
    in the dict is drawn again, and the list is taken anew when half of it went stale,
    when the dict grew by half, or after as many picks as it has keys (so new keys get
    their chance). Taking it is one C-speed pass (about 5 ms for 1M keys), at most once
    per that many changes or picks: O(1) amortised.
    """

    __slots__ = ("_keys", "_stale", "_picks")

    def __init__(self) -> None:
        self._keys: list[bytes] = []
        self._stale = 0
        self._picks = 0

    def clear(self) -> None:
        self._keys = []

    def pick(self, db: dict[bytes, Any]) -> bytes | None:
        if not db:
            return None
        while True:
            keys = self._keys
            if not keys or self._stale * 2 > len(keys) or self._picks > len(keys) or len(db) * 2 > len(keys) * 3:
                keys = self._keys = list(db)
                self._stale = self._picks = 0
            self._picks += 1
            key = keys[random.randrange(len(keys))]
            if key in db:
                return key
            self._stale += 1


@command("randomkey", 1, "readonly")
def randomkey(ctx: Any, argv: list[bytes]) -> bytes:
    key = ctx.random_keys.pick(ctx.db)
    return ctx.null if key is None else resp.bulk(key)
