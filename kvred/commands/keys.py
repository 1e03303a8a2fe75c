"""Keyspace commands (Redis's db.c): DEL, EXISTS, TYPE, KEYS, SCAN, RENAME, RANDOMKEY,
and the databases: SELECT, DBSIZE, FLUSHDB, FLUSHALL, SWAPDB, MOVE, COPY.

A key moved or copied keeps its TTL (RENAME, MOVE, COPY). SCAN walks the database's
key order (kvred/keyorder.py): work proportional to COUNT per call, no copy of the
key list, and Redis's guarantee that a key present for the whole iteration is
returned at least once.
"""

from __future__ import annotations

import re

from .. import resp
from ..glob import compile_glob
from ..keyspace import Keyspace
from ..notify import NOTIFY_GENERIC
from ..valuetypes import copy_value, type_name
from .base import ERR_NOT_INT, ERR_SYNTAX, Context, ReplyTooLarge, command, int_arg
from .scanning import parse_scan_options

__all__ = ["parse_cursor", "db_index"]

OK = resp.OK
ZERO = b":0\r\n"
ONE = b":1\r\n"
ERR_DB_RANGE = b"-ERR DB index is out of range\r\n"
ERR_INT_RANGE = b"-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"
ERR_SAME_OBJECT = b"-ERR source and destination objects are the same\r\n"


@command("del", -2, "write", (1, -1, 1))
def del_(ctx: Context, argv: list[bytes]) -> bytes:
    keyspace = ctx.keyspace
    delete = keyspace.delete
    deleted = [key for key in argv[1:] if delete(key)]
    if deleted:
        ctx.aof_feed([b"DEL", *deleted])
        if keyspace.notify_flags:
            for key in deleted:
                keyspace.notify(NOTIFY_GENERIC, b"del", key)
    return b":%d\r\n" % len(deleted)


@command("unlink", -2, "write fast", (1, -1, 1))
def unlink(ctx: Context, argv: list[bytes]) -> bytes:
    return del_(ctx, argv)


@command("exists", -2, "readonly fast", (1, -1, 1))
def exists(ctx: Context, argv: list[bytes]) -> bytes:
    keyspace = ctx.keyspace
    return b":%d\r\n" % sum(1 for key in argv[1:] if keyspace.exists(key))  # duplicates count twice, as Redis


@command("touch", -2, "readonly fast", (1, -1, 1))
def touch(ctx: Context, argv: list[bytes]) -> bytes:
    """Counts the keys that exist, and marks them accessed (OBJECT IDLETIME 0)."""
    lookup = ctx.keyspace.lookup_read
    return b":%d\r\n" % sum(1 for key in argv[1:] if lookup(key) is not None)


@command("type", 2, "readonly fast", (1, 1, 1))
def type_(ctx: Context, argv: list[bytes]) -> bytes:
    value = ctx.keyspace.peek(argv[1])
    return b"+" + (b"none" if value is None else type_name(value)) + b"\r\n"


@command("dbsize", 1, "readonly fast")
def dbsize(ctx: Context, argv: list[bytes]) -> bytes:
    return resp.integer(len(ctx.keyspace))


def _flush_is_valid(argv: list[bytes]) -> bool:
    """FLUSHDB / FLUSHALL [ASYNC|SYNC] (both are done at once here)."""
    return len(argv) == 1 or (len(argv) == 2 and argv[1].lower() in (b"async", b"sync"))


@command("flushdb", -1, "write")
def flushdb(ctx: Context, argv: list[bytes]) -> bytes:
    if not _flush_is_valid(argv):
        return ERR_SYNTAX
    ctx.keyspace.flush()
    ctx.aof_feed([argv[0]])  # always logged, as Redis does, even on an empty database
    return OK


@command("flushall", -1, "write")
def flushall(ctx: Context, argv: list[bytes]) -> bytes:
    if not _flush_is_valid(argv):
        return ERR_SYNTAX
    ctx.databases.flushall()
    ctx.aof_feed([argv[0]])
    return OK


@command("keys", 2, "readonly")
def keys(ctx: Context, argv: list[bytes]) -> bytes:
    pattern = compile_glob(argv[1])
    keyspace = ctx.keyspace
    if pattern.literal is not None and not pattern.matches_everything:
        found = [pattern.literal] if keyspace.has_unexpired(pattern.literal) else []
    elif pattern.matches_everything:
        found = list(keyspace.keys())
    else:
        found = pattern.select(keyspace.keys())
    return _key_array(ctx, found)


def _key_array(ctx: Context, found: list[bytes]) -> bytes:
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
def scan(ctx: Context, argv: list[bytes]) -> bytes:
    cursor = parse_cursor(argv[1])
    if cursor is None:
        return b"-ERR invalid cursor\r\n"
    options = parse_scan_options(argv, 2, with_type=True)
    if isinstance(options, bytes):
        return options
    keyspace = ctx.keyspace
    next_cursor, found = keyspace.scan(cursor, options.count)
    if options.match is not None:
        found = list(filter(options.match, found))
    type_filter = options.type_filter
    if type_filter is not None:
        # Redis 7.0 looks the type up first, which deletes an expired key: its type is
        # then "none", and TYPE none returns it.
        found = [key for key in found if type_name(keyspace.peek(key)) == type_filter]
    found = keyspace.drop_expired(found)
    return b"*2\r\n" + resp.bulk(b"%d" % next_cursor) + _key_array(ctx, found)


def _rename(ctx: Context, argv: list[bytes], only_if_new: bool) -> bytes:
    """RENAME / RENAMENX: the value and its TTL move; watchers of both keys are touched."""
    keyspace = ctx.keyspace
    src, dst = argv[1], argv[2]
    value = keyspace.lookup_write(src)
    if value is None:
        return b"-ERR no such key\r\n"
    if src == dst:
        return ZERO if only_if_new else OK
    # looked up for RENAME too: an expired destination is deleted (and counted) as expired
    if keyspace.lookup_write(dst) is not None:
        if only_if_new:
            return ZERO
        keyspace.delete(dst)  # so that the destination is a new key, as Redis's dbDelete + dbAdd
    when = keyspace.get_expire(src)
    keyspace.delete(src)
    keyspace.set_key(dst, value)
    if when is not None:
        keyspace.set_expire(dst, when)
    ctx.aof_feed(argv)
    if keyspace.notify_flags:
        keyspace.notify(NOTIFY_GENERIC, b"rename_from", src)
        keyspace.notify(NOTIFY_GENERIC, b"rename_to", dst)
    return ONE if only_if_new else OK


@command("rename", 3, "write", (1, 2, 1))
def rename(ctx: Context, argv: list[bytes]) -> bytes:
    return _rename(ctx, argv, only_if_new=False)


@command("renamenx", 3, "write fast", (1, 2, 1))
def renamenx(ctx: Context, argv: list[bytes]) -> bytes:
    return _rename(ctx, argv, only_if_new=True)


@command("randomkey", 1, "readonly")
def randomkey(ctx: Context, argv: list[bytes]) -> bytes:
    key = ctx.keyspace.random_key()
    return ctx.null if key is None else resp.bulk(key)


# ---------------------------------------------------------------- databases


def db_index(arg: bytes, databases: int) -> int | bytes:
    """A database index as SELECT and MOVE read it (getIntFromObjectOrReply, then the
    range of --databases): the index, or Redis's error."""
    index = int_arg(arg)
    if index is None:
        return ERR_NOT_INT
    if not -(2**31) <= index < 2**31:
        return ERR_INT_RANGE
    if not 0 <= index < databases:
        return ERR_DB_RANGE
    return index


@command("select", 2, "fast loading stale")
def select(ctx: Context, argv: list[bytes]) -> bytes:
    index = db_index(argv[1], len(ctx.databases))
    if isinstance(index, bytes):
        return index
    ctx.select(index)
    return OK


@command("swapdb", 3, "write fast")
def swapdb(ctx: Context, argv: list[bytes]) -> bytes:
    indexes = []
    for arg, which in ((argv[1], b"first"), (argv[2], b"second")):
        index = int_arg(arg)
        if index is None or not -(2**31) <= index < 2**31:
            return b"-ERR invalid " + which + b" DB index\r\n"
        indexes.append(index)
    first, second = indexes
    count = len(ctx.databases)
    if not (0 <= first < count and 0 <= second < count):
        return ERR_DB_RANGE
    if first != second:
        ctx.databases.swapdb(first, second)
    ctx.aof_feed(argv)
    return OK


def _move_into(source: Keyspace, key: bytes, target: Keyspace, value: object) -> None:
    """Store `value` under `key` in `target` with the TTL `key` has in `source`."""
    when = source.get_expire(key)
    target.set_key(key, value)
    if when is not None:
        target.set_expire(key, when)


@command("move", 3, "write fast", (1, 1, 1))
def move(ctx: Context, argv: list[bytes]) -> bytes:
    index = db_index(argv[2], len(ctx.databases))
    if isinstance(index, bytes):
        return index
    source, key = ctx.keyspace, argv[1]
    target = ctx.databases.dbs[index]
    if target is source:
        return ERR_SAME_OBJECT
    value = source.lookup_write(key)
    if value is None or target.lookup_write(key) is not None:
        return ZERO
    _move_into(source, key, target, value)
    source.delete(key)
    ctx.aof_feed(argv)
    if source.notify_flags:
        source.notify(NOTIFY_GENERIC, b"move_from", key)
        target.notify(NOTIFY_GENERIC, b"move_to", key)
    return ONE


@command("copy", -3, "write denyoom", (1, 2, 1))
def copy(ctx: Context, argv: list[bytes]) -> bytes:
    """COPY source destination [DB destination-db] [REPLACE]."""
    source = ctx.keyspace
    target = source
    replace = False
    i = 3
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"replace":
            replace = True
        elif opt == b"db" and i + 1 < len(argv):
            index = db_index(argv[i + 1], len(ctx.databases))
            if isinstance(index, bytes):
                return index
            target = ctx.databases.dbs[index]
            i += 1
        else:
            return ERR_SYNTAX
        i += 1
    src, dst = argv[1], argv[2]
    if target is source and src == dst:
        return ERR_SAME_OBJECT
    value = source.lookup_read(src)
    if value is None:
        return ZERO
    if target.lookup_write(dst) is not None:
        if not replace:
            return ZERO
        target.delete(dst)
    when = source.get_expire(src)
    target.set_key(dst, copy_value(value))
    if when is not None:
        target.set_expire(dst, when)
    ctx.aof_feed(argv)
    target.notify(NOTIFY_GENERIC, b"copy_to", dst)
    return ONE
