"""Bitmap commands (Redis's bitops.c): SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
BITFIELD and BITFIELD_RO.

A bitmap is a string (kvred/commands/strings.py): `bytes`, or a `bytearray` once a
command changed it in place. Bit 0 is the most significant bit of the first byte.
The writing commands (SETBIT, BITFIELD) make the value a bytearray first, as Redis
unshares it (OBJECT ENCODING says `raw` afterwards even when nothing changed), grow
it with zero bytes as far as they write, and keep its TTL.

Whole-range work is done by CPython's C code, never a loop per byte: BITCOUNT is
`int.from_bytes(chunk).bit_count()` over chunks, BITPOS skips chunks of all zeros /
all ones by comparison and looks inside one with `int.bit_length`, BITOP is integer
arithmetic on `int.from_bytes` of whole strings.

What is logged: SETBIT, BITOP and BITFIELD as sent (they replay deterministically on
the same data), and only when they changed something: a SETBIT or BITFIELD that leaves
the string as it was logs nothing (nor touches WATCHers, as in Redis 7.0).
"""

from __future__ import annotations

from .. import resp
from ..keyspace import Keyspace
from ..notify import NOTIFY_GENERIC, NOTIFY_STRING
from ..valuetypes import STRING_TYPES
from .base import ERR_NOT_INT, ERR_SYNTAX, Context, ReplyTooLarge, command, int_arg
from .strings import _mutable

__all__: list[str] = []

ZERO = b":0\r\n"
ONE = b":1\r\n"
MINUS_ONE = b":-1\r\n"
ERR_BIT_OFFSET = b"-ERR bit offset is not an integer or out of range\r\n"
ERR_BIT_VALUE = b"-ERR bit is not an integer or out of range\r\n"
ERR_BITPOS_BIT = b"-ERR The bit argument must be 1 or 0.\r\n"
ERR_BITOP_NOT = b"-ERR BITOP NOT must be called with a single source key.\r\n"
ERR_BITFIELD_TYPE = (
    b"-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"
)
ERR_OVERFLOW_TYPE = b"-ERR Invalid OVERFLOW type specified\r\n"
ERR_BITFIELD_RO = b"-ERR BITFIELD_RO only supports the GET subcommand\r\n"

CHUNK = 1 << 16  # bytes per step of the whole-range scans (bounds the temporary ints)
OP_CHUNK = 1 << 20  # bytes per step of BITOP (bounds its temporary ints, however many keys)
_ZEROS = bytes(CHUNK)
_ONES = b"\xff" * CHUNK


def _cstr(arg: bytes) -> bytes:
    """An option as Redis's strcasecmp sees it: up to the first NUL, lowercased."""
    return arg.split(b"\0", 1)[0].lower()


def _bit_offset(ctx: Context, arg: bytes, hash_bits: int = 0) -> int | None:
    """getBitOffsetFromArgument: a bit offset (BITFIELD's `#N` means N * the field's
    width), None when it is not an integer, negative, or past proto-max-bulk-len bytes
    (not checked while loading the AOF)."""
    if hash_bits and arg[:1] == b"#":
        offset = int_arg(arg[1:])
        if offset is not None:  # multiplied as int64, wrapping as Redis's does
            offset = ((offset * hash_bits + 2**63) & 0xFFFFFFFFFFFFFFFF) - 2**63
    else:
        offset = int_arg(arg)
    if offset is None or offset < 0:
        return None
    if (offset >> 3) >= ctx.config.proto_max_bulk_len and not ctx.databases.loading:
        return None
    return offset


def _string(ctx: Context, key: bytes) -> bytes | bytearray | None:
    value: bytes | bytearray | None = ctx.keyspace.lookup_typed(key, STRING_TYPES)
    return value


def _writable(keyspace: Keyspace, key: bytes, size: int) -> tuple[bytearray, bool]:
    """lookupStringForBitCommand: the string at `key` as a bytearray of at least `size`
    bytes (created, or grown with zeros), and whether it was created or grown; WrongType
    for another type."""
    old = keyspace.lookup_typed(key, STRING_TYPES, True)
    if old is None:
        value = bytearray(size)
        keyspace.set_key(key, value)
        return value, True
    value = _mutable(keyspace, key, old)
    if len(value) < size:
        value.extend(bytes(size - len(value)))
        return value, True
    return value, False


# --------------------------------------------------------------- SETBIT / GETBIT


@command("setbit", 4, "write denyoom", (1, 1, 1))
def setbit(ctx: Context, argv: list[bytes]) -> bytes:
    offset = _bit_offset(ctx, argv[2])
    if offset is None:
        return ERR_BIT_OFFSET
    on = int_arg(argv[3])
    if on is None or on & ~1:
        return ERR_BIT_VALUE
    keyspace, key = ctx.keyspace, argv[1]
    byte = offset >> 3
    mask = 0x80 >> (offset & 7)
    value, grown = _writable(keyspace, key, byte + 1)
    current = value[byte]
    was = current & mask
    if grown or bool(was) != bool(on):
        value[byte] = current | mask if on else current & ~mask
        keyspace.modified(key)
        ctx.aof_feed(argv)
        keyspace.notify(NOTIFY_STRING, b"setbit", key)
    return ONE if was else ZERO


@command("getbit", 3, "readonly fast", (1, 1, 1))
def getbit(ctx: Context, argv: list[bytes]) -> bytes:
    offset = _bit_offset(ctx, argv[2])
    if offset is None:
        return ERR_BIT_OFFSET
    value = _string(ctx, argv[1])
    byte = offset >> 3
    if value is None or byte >= len(value):
        return ZERO
    return ONE if value[byte] & (0x80 >> (offset & 7)) else ZERO


# --------------------------------------------------------------- BITCOUNT / BITPOS


def _range(start: int, end: int, total: int) -> tuple[int, int]:
    """Redis's conversion of a start/end pair over `total` units (negative from the
    end, clamped)."""
    if start < 0:
        start += total
    if end < 0:
        end += total
    start = max(start, 0)
    end = max(end, 0)
    end = min(end, total - 1)
    return start, end


def _popcount(value: bytes | bytearray, first: int, stop: int) -> int:
    """Set bits in value[first:stop]."""
    total = 0
    with memoryview(value) as view:
        for pos in range(first, stop, CHUNK):
            total += int.from_bytes(view[pos : min(pos + CHUNK, stop)], "big").bit_count()
    return total


@command("bitcount", -2, "readonly", (1, 1, 1))
def bitcount(ctx: Context, argv: list[bytes]) -> bytes:
    """BITCOUNT key [start end [BYTE|BIT]]. Redis 7.0 looks the key up before reading
    the arguments: a missing key is 0 whatever follows."""
    value = _string(ctx, argv[1])
    if value is None:
        return ZERO
    size = len(value)
    argc = len(argv)
    if argc == 2:
        return resp.integer(_popcount(value, 0, size))
    if argc not in (4, 5):
        return ERR_SYNTAX
    start, end = int_arg(argv[2]), int_arg(argv[3])
    if start is None or end is None:
        return ERR_NOT_INT
    if start < 0 and end < 0 and start > end:
        return ZERO
    is_bit = False
    if argc == 5:
        mode = _cstr(argv[4])
        if mode == b"bit":
            is_bit = True
        elif mode != b"byte":
            return ERR_SYNTAX
    start, end = _range(start, end, size * 8 if is_bit else size)
    if start > end:
        return ZERO
    if not is_bit:
        return resp.integer(_popcount(value, start, end + 1))
    count = _popcount(value, start >> 3, (end >> 3) + 1)
    count -= (value[start >> 3] >> (8 - (start & 7))).bit_count()  # bits before start
    count -= (value[end >> 3] & ((1 << (7 - (end & 7))) - 1)).bit_count()  # bits after end
    return resp.integer(count)


def _first_bit(value: bytes | bytearray, first_bit: int, last_bit: int, bit: int) -> int:
    """The offset of the first bit equal to `bit` in [first_bit, last_bit]; -1 if none."""
    first, last = first_bit >> 3, last_bit >> 3
    skip = _ZEROS if bit else _ONES  # a chunk of these holds no such bit
    pos = first
    while pos <= last:
        stop = min(pos + CHUNK, last + 1)
        chunk = value[pos:stop]  # a copy compares 16x faster than a memoryview slice
        length = stop - pos
        if chunk == (skip if length == CHUNK else skip[:length]):
            pos = stop
            continue
        width = length * 8
        n = int.from_bytes(chunk, "big")
        if not bit:
            n ^= (1 << width) - 1
        if pos == first:
            n &= (1 << (width - (first_bit & 7))) - 1
        if stop == last + 1:
            n &= ~((1 << (7 - (last_bit & 7))) - 1)
        if n:
            return pos * 8 + width - n.bit_length()
        pos = stop
    return -1


@command("bitpos", -3, "readonly", (1, 1, 1))
def bitpos(ctx: Context, argv: list[bytes]) -> bytes:
    """BITPOS key bit [start [end [BYTE|BIT]]]. A missing key is all zeros: 0 for a clear
    bit, -1 for a set one. A clear bit looked for without an end may be the first one
    past the string (its length in bits); with an end given, it must be in the range."""
    bit = int_arg(argv[2])
    if bit is None:
        return ERR_NOT_INT
    if bit != 0 and bit != 1:
        return ERR_BITPOS_BIT
    value = _string(ctx, argv[1])
    if value is None:
        return MINUS_ONE if bit else ZERO
    size = len(value)
    argc = len(argv)
    end_given = False
    is_bit = False
    if argc == 3:
        start, end = 0, size - 1
    elif argc <= 6:
        start_arg = int_arg(argv[3])
        if start_arg is None:
            return ERR_NOT_INT
        if argc == 6:
            mode = _cstr(argv[5])
            if mode == b"bit":
                is_bit = True
            elif mode != b"byte":
                return ERR_SYNTAX
        if argc >= 5:
            end_arg = int_arg(argv[4])
            if end_arg is None:
                return ERR_NOT_INT
            end_given = True
        else:
            end_arg = size * 8 + 7 if is_bit else size - 1
        start, end = _range(start_arg, end_arg, size * 8 if is_bit else size)
    else:
        return ERR_SYNTAX
    if start > end:
        return MINUS_ONE
    first_bit, last_bit = (start, end) if is_bit else (start * 8, end * 8 + 7)
    found = _first_bit(value, first_bit, last_bit, bit)
    if found < 0 and not bit and not end_given:
        found = last_bit + 1  # the string is followed by clear bits
    return resp.integer(found)


# --------------------------------------------------------------- BITOP

_BITOPS = (b"and", b"or", b"xor", b"not")


@command("bitop", -4, "write denyoom", (2, -1, 1))
def bitop(ctx: Context, argv: list[bytes]) -> bytes:
    """BITOP op dest key [key ...]: missing keys are empty strings, shorter strings are
    padded with zero bytes. The result replaces dest (its TTL dropped); an empty result
    deletes it. The result is a `raw` string, as Redis creates it."""
    op = _cstr(argv[1])
    if op not in _BITOPS:
        return ERR_SYNTAX
    if op == b"not" and len(argv) != 4:
        return ERR_BITOP_NOT
    keyspace = ctx.keyspace
    values = [_string(ctx, key) or b"" for key in argv[3:]]
    size = max(len(v) for v in values)
    dest = argv[2]
    if not size:
        if keyspace.delete(dest):
            ctx.aof_feed(argv)
            keyspace.notify(NOTIFY_GENERIC, b"del", dest)
        return ZERO
    result = bytearray(size)  # a bytearray is `raw`, as Redis's result is
    for pos in range(0, size, OP_CHUNK):
        stop = min(pos + OP_CHUNK, size)
        width = stop - pos
        acc = -1
        for value in values:
            part = value[pos:stop]
            n = int.from_bytes(part, "big") << ((width - len(part)) * 8)  # zero-padded
            if acc == -1:
                acc = n
            elif op == b"and":
                acc &= n
            elif op == b"or":
                acc |= n
            else:
                acc ^= n
        if op == b"not":
            acc ^= (1 << (width * 8)) - 1
        result[pos:stop] = acc.to_bytes(width, "big")
    keyspace.set_key(dest, result)
    ctx.aof_feed(argv)
    keyspace.notify(NOTIFY_STRING, b"set", dest)
    return resp.integer(size)


# --------------------------------------------------------------- BITFIELD

OVERFLOW_WRAP, OVERFLOW_SAT, OVERFLOW_FAIL = 0, 1, 2
_OVERFLOWS = {b"wrap": OVERFLOW_WRAP, b"sat": OVERFLOW_SAT, b"fail": OVERFLOW_FAIL}
OP_GET, OP_SET, OP_INCRBY = 0, 1, 2
_OPS = {b"get": (OP_GET, 2), b"set": (OP_SET, 3), b"incrby": (OP_INCRBY, 3)}


def _field_type(arg: bytes) -> tuple[bool, int] | None:
    """getBitfieldTypeFromArgument: (signed, bits) for i1..i64 / u1..u63, else None."""
    kind = arg[:1]
    if kind == b"i":  # lowercase only, in Redis 7.0
        signed = True
    elif kind == b"u":
        signed = False
    else:
        return None
    bits = int_arg(arg[1:].split(b"\0", 1)[0])
    if bits is None or bits < 1 or bits > (64 if signed else 63):
        return None
    return signed, bits


def _get_field(value: bytes | bytearray, offset: int, bits: int, signed: bool) -> int:
    """The field at `offset` (bits past the end of the string read as zeros)."""
    first = offset >> 3
    length = ((offset + bits - 1) >> 3) - first + 1
    chunk = value[first : first + length]
    n = int.from_bytes(chunk, "big") << ((length - len(chunk)) * 8)
    n = (n >> (length * 8 - (offset & 7) - bits)) & ((1 << bits) - 1)
    if signed and n >> (bits - 1):
        n -= 1 << bits
    return n


def _set_field(value: bytearray, offset: int, bits: int, number: int) -> None:
    """Write the low `bits` bits of `number` at `offset` (the string is long enough)."""
    first = offset >> 3
    stop = ((offset + bits - 1) >> 3) + 1
    length = stop - first
    shift = length * 8 - (offset & 7) - bits
    field_mask = ((1 << bits) - 1) << shift
    n = int.from_bytes(value[first:stop], "big")
    n = (n & ~field_mask) | ((number << shift) & field_mask)
    value[first:stop] = n.to_bytes(length, "big")


def _overflowed(total: int, low: int, high: int, bits: int, signed: bool, mode: int) -> tuple[bool, int]:
    """Redis's check*BitfieldOverflow for a result `total`: (overflowed, what to store)."""
    if low <= total <= high:
        return False, total
    if mode == OVERFLOW_SAT:
        return True, high if total > high else low
    wrapped = total & ((1 << bits) - 1)  # WRAP (FAIL does not use it)
    if signed and wrapped >> (bits - 1):
        wrapped -= 1 << bits
    return True, wrapped


def _bitfield(ctx: Context, argv: list[bytes], read_only: bool) -> bytes:
    # Every operation is parsed (and every argument error found) before the key is read.
    ops: list[tuple[int, int, int, bool, int, int]] = []  # opcode, offset, bits, signed, n, overflow
    overflow = OVERFLOW_WRAP
    writes = False
    highest = 0
    argc = len(argv)
    j = 2
    while j < argc:
        remaining = argc - j - 1
        name = _cstr(argv[j])
        spec = _OPS.get(name)
        if spec is None or remaining < spec[1]:
            if name == b"overflow" and remaining >= 1:
                mode = _OVERFLOWS.get(_cstr(argv[j + 1]))
                if mode is None:
                    return ERR_OVERFLOW_TYPE
                overflow = mode
                j += 2
                continue
            return ERR_SYNTAX
        opcode = spec[0]
        field = _field_type(argv[j + 1])
        if field is None:
            return ERR_BITFIELD_TYPE
        signed, bits = field
        offset = _bit_offset(ctx, argv[j + 2], bits)
        if offset is None:
            return ERR_BIT_OFFSET
        number = 0
        if opcode != OP_GET:
            writes = True
            highest = max(highest, offset + bits - 1)
            parsed = int_arg(argv[j + 3])
            if parsed is None:
                return ERR_NOT_INT
            number = parsed
        ops.append((opcode, offset, bits, signed, number, overflow))
        j += 4 if opcode != OP_GET else 3
    keyspace, key = ctx.keyspace, argv[1]
    value: bytes | bytearray
    grown = False
    if not writes:
        found = _string(ctx, key)
        value = b"" if found is None else found
    else:
        if read_only:
            return ERR_BITFIELD_RO
        value, grown = _writable(keyspace, key, (highest >> 3) + 1)
    replies = []
    changes = False  # Redis's: a write that was not refused, and either grew or changed the string
    for opcode, offset, bits, signed, number, mode in ops:
        old = _get_field(value, offset, bits, signed)
        if opcode == OP_GET:
            replies.append(resp.integer(old))
            continue
        assert type(value) is bytearray
        if signed:
            low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        else:
            low, high = 0, (1 << bits) - 1
        if opcode == OP_INCRBY:
            over, new = _overflowed(old + number, low, high, bits, signed, mode)
            reply = new
        else:
            # an unsigned SET reads its value as uint64: a negative one is too big
            over, new = _overflowed(number if signed else number & 0xFFFFFFFFFFFFFFFF, low, high, bits, signed, mode)
            reply = old
        if over and mode == OVERFLOW_FAIL:
            replies.append(ctx.null)
        else:
            if new != old:
                _set_field(value, offset, bits, new)
                changes = True
            elif grown:
                changes = True
            replies.append(resp.integer(reply))
    if changes:
        # Redis touches WATCHers (and propagates) only when a SET/INCRBY wrote a new value
        # or grew the string: one refused by OVERFLOW FAIL, or writing the same value, is
        # no change.
        keyspace.modified(key)
        ctx.aof_feed(argv)
        keyspace.notify(NOTIFY_STRING, b"setbit", key)
    elif grown:
        # grown (or created) by writes that OVERFLOW FAIL refused: Redis keeps the longer
        # string and propagates nothing; kvred logs the command so the AOF rebuilds it
        ctx.aof_feed(argv)
    reply_bytes = resp.array(replies)
    if len(reply_bytes) > ctx.output_limit:
        raise ReplyTooLarge
    return reply_bytes


@command("bitfield", -2, "write denyoom", (1, 1, 1))
def bitfield(ctx: Context, argv: list[bytes]) -> bytes:
    """BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset incr]
    [OVERFLOW WRAP|SAT|FAIL] ...: logged as sent when it has a SET or INCRBY."""
    return _bitfield(ctx, argv, read_only=False)


@command("bitfield_ro", -2, "readonly fast", (1, 1, 1))
def bitfield_ro(ctx: Context, argv: list[bytes]) -> bytes:
    return _bitfield(ctx, argv, read_only=True)
