"""HyperLogLog (Redis's hyperloglog.c): PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST.

An HLL is an ordinary string value (TYPE string) in Redis's exact format, so that
GET/SET copies keep working between kvred and redis-server, byte for byte:

    header (16 bytes)  "HYLL", encoding (0 dense, 1 sparse), 3 unused bytes, the
                       cached cardinality (8 bytes, little endian; the top bit of
                       the last byte set: the cache is invalid)
    dense              16384 registers of 6 bits, packed from the LSB of each byte
                       (12288 bytes: a dense value is always 12304 bytes long)
    sparse             opcodes: ZERO 00xxxxxx (1-64 zero registers), XZERO
                       01xxxxxx yyyyyyyy (1-16384 zero registers), VAL 1vvvvvxx
                       (1-4 registers of value 1-32)

Elements are hashed with MurmurHash64A (seed 0xadc83b19): the low 14 bits pick the
register, the run of zeros above them (plus one) is the candidate value. A sparse
value is edited in place exactly as Redis edits it (the same splits and the same
merges of adjacent VAL opcodes, so the bytes are history-dependent like Redis's),
and promoted to dense when a value exceeds 32 or the value would outgrow
hll-sparse-max-bytes. The cardinality is Redis 7's estimator (Ertl's, from the
register histogram), with the same floating-point operations in the same order.

A value is kept as a bytearray once an HLL command touched it (Redis's
dbUnshareStringValue, which also makes OBJECT ENCODING report raw), and changed in
place: PFADD on a dense HLL costs the hash and two byte updates. Whole-register work
(histograms, merges, sparse <-> dense) runs as bulk operations: strided slices,
bytes.translate and shifts/masks of 12-16 KB integers (SIMD within a register).

AOF: PFADD and PFMERGE are logged as sent when they change something (Redis
propagates them; replay does the same edits, so the bytes are identical). PFCOUNT
that recomputes the cached cardinality writes it into the value, as Redis does: it
is logged as sent (PFCOUNT key), so replay writes the same cache and GET after a
restart returns the same bytes. PFDEBUG GETREG/TODENSE that convert a sparse value
are logged as sent (Redis forces their propagation too).
"""

from __future__ import annotations

import math
import re
import struct
from bisect import bisect_right
from collections import Counter
from itertools import accumulate

from .. import resp
from ..keyspace import WrongType
from ..notify import NOTIFY_STRING
from .base import Context, ReplyTooLarge, command, error_quoting

__all__ = ["murmurhash64a", "estimate", "HLL_REGISTERS"]

HLL_P = 14
HLL_Q = 64 - HLL_P
HLL_REGISTERS = 1 << HLL_P  # 16384
HLL_P_MASK = HLL_REGISTERS - 1
HLL_HDR_SIZE = 16
HLL_DENSE_BYTES = HLL_REGISTERS * 6 // 8  # 12288
HLL_DENSE_SIZE = HLL_HDR_SIZE + HLL_DENSE_BYTES  # 12304
HLL_DENSE = 0
HLL_SPARSE = 1
SPARSE_VAL_MAX = 32
ZERO_MAX_LEN = 64
HLL_ALPHA_INF = 0.721347520444481703680  # 0.5/ln(2)
_SEED = 0xADC83B19
_M = 0xC6A4A7935BD1E995
_MASK64 = (1 << 64) - 1
_PATTERN_GUARD = 1 << HLL_Q  # the run of zeros stops at Q+1

ERR_NOT_HLL = b"-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n"
ERR_INVALID = b"-INVALIDOBJ Corrupted HLL object detected\r\n"
ZERO = b":0\r\n"
ONE = b":1\r\n"

# An empty HLL as PFADD/PFMERGE create it: sparse, one XZERO covering every register,
# cached cardinality 0 (valid).
EMPTY_SPARSE = b"HYLL\x01\x00\x00\x00" + bytes(8) + bytes((0x40 | ((HLL_REGISTERS - 1) >> 8), (HLL_REGISTERS - 1) & 0xFF))

_BLOCK_FORMATS: dict[int, struct.Struct] = {}  # short elements: one unpack call
_WORD = struct.Struct("<Q")


def murmurhash64a(data: bytes, seed: int = _SEED) -> int:
    """MurmurHash64A as Redis computes it (endian neutral: 8-byte blocks little endian)."""
    n = len(data)
    h = (seed ^ (n * _M)) & _MASK64
    blocks = n >> 3
    if blocks:
        fmt = _BLOCK_FORMATS.get(blocks)
        if fmt is None and blocks <= 64:
            fmt = _BLOCK_FORMATS[blocks] = struct.Struct(f"<{blocks}Q")
        words = (k for (k,) in _WORD.iter_unpack(data[: blocks * 8])) if fmt is None else fmt.unpack_from(data)
        for k in words:
            k = (k * _M) & _MASK64
            k ^= k >> 47
            h ^= (k * _M) & _MASK64
            h = (h * _M) & _MASK64
    tail = n & 7
    if tail:
        h ^= int.from_bytes(data[n - tail :], "little")
        h = (h * _M) & _MASK64
    h ^= h >> 47
    h = (h * _M) & _MASK64
    return h ^ (h >> 47)


def _pattern(element: bytes) -> tuple[int, int]:
    """hllPatLen: (register index, length of the 000..1 pattern above the index bits)."""
    h = murmurhash64a(element)
    rest = (h >> HLL_P) | _PATTERN_GUARD
    return h & HLL_P_MASK, (rest & -rest).bit_length()


# ------------------------------------------------------------------ validity


def _is_hll(value: bytes | bytearray) -> bool:
    """isHLLObjectOrReply's checks on a string value."""
    size = len(value)
    if size < HLL_HDR_SIZE or value[:4] != b"HYLL":
        return False
    encoding = value[4]
    return encoding == HLL_SPARSE or (encoding == HLL_DENSE and size == HLL_DENSE_SIZE)


def _hll_value(ctx: Context, key: bytes, write: bool) -> bytes | bytearray | None | bool:
    """The HLL at `key`: None if missing, False if a string that is not an HLL;
    WrongType (raised) for another type."""
    value = ctx.keyspace.lookup_write(key) if write else ctx.keyspace.lookup_read(key)
    if value is None:
        return None
    if type(value) is not bytes and type(value) is not bytearray:
        raise WrongType
    if not _is_hll(value):
        return False
    return value  # type: ignore[no-any-return]


def _unshared(ctx: Context, key: bytes, value: bytes | bytearray) -> bytearray:
    """dbUnshareStringValue: the value as a bytearray to change in place (raw encoding)."""
    if type(value) is bytearray:
        return value
    mutable = bytearray(value)
    ctx.keyspace.replace_value(key, mutable)
    return mutable


# ------------------------------------------------------------------ bulk register work

_AND63 = bytes(i & 63 for i in range(256))
_AND15 = bytes(i & 15 for i in range(256))
_AND3 = bytes(i & 3 for i in range(256))
_SHR2 = bytes(i >> 2 for i in range(256))
_SHR4 = bytes(i >> 4 for i in range(256))
_SHR6 = bytes(i >> 6 for i in range(256))
_QUARTER = HLL_REGISTERS // 4  # 4096 groups of 3 bytes = 4 registers


def _dense_planes(value: bytes | bytearray) -> tuple[bytes, bytes, bytes, bytes]:
    """The registers of a dense value as four planes: registers 4i, 4i+1, 4i+2, 4i+3."""
    regs = bytes(value[HLL_HDR_SIZE:HLL_DENSE_SIZE])
    b0, b1, b2 = regs[0::3], regs[1::3], regs[2::3]
    r0 = b0.translate(_AND63)
    r3 = b2.translate(_SHR2)
    # per-byte shifts of a whole plane at once: each byte's value stays inside its byte
    r1 = (
        int.from_bytes(b1.translate(_AND15), "little") << 2 | int.from_bytes(b0.translate(_SHR6), "little")
    ).to_bytes(_QUARTER, "little")
    r2 = (
        int.from_bytes(b2.translate(_AND3), "little") << 4 | int.from_bytes(b1.translate(_SHR4), "little")
    ).to_bytes(_QUARTER, "little")
    return r0, r1, r2, r3


def _dense_raw(value: bytes | bytearray) -> bytearray:
    """One byte per register (Redis's HLL_RAW) from a dense value."""
    raw = bytearray(HLL_REGISTERS)
    raw[0::4], raw[1::4], raw[2::4], raw[3::4] = _dense_planes(value)
    return raw


def _raw_to_dense(raw: bytes | bytearray) -> bytearray:
    """hllDenseCompress: the 12288 register bytes of a dense value from raw registers."""
    raw = bytes(raw).translate(_AND63)
    r0, r1, r2, r3 = raw[0::4], raw[1::4], raw[2::4], raw[3::4]
    b0 = int.from_bytes(r0, "little") | int.from_bytes(r1.translate(_AND3), "little") << 6
    b1 = int.from_bytes(r1.translate(_SHR2), "little") | int.from_bytes(r2.translate(_AND15), "little") << 4
    b2 = int.from_bytes(r2.translate(_SHR4), "little") | int.from_bytes(r3, "little") << 2
    out = bytearray(HLL_DENSE_BYTES)
    out[0::3] = b0.to_bytes(_QUARTER, "little")
    out[1::3] = b1.to_bytes(_QUARTER, "little")
    out[2::3] = b2.to_bytes(_QUARTER, "little")
    return out


_VAL_RUNS = [bytes([v]) * 4 for v in range(64)]


def _sparse_raw(value: bytes | bytearray) -> bytearray | None:
    """One byte per register from a sparse value; None if it is corrupted."""
    raw = bytearray(HLL_REGISTERS)
    idx = 0
    p = HLL_HDR_SIZE
    end = len(value)
    while p < end:
        b = value[p]
        if b & 0x80:  # VAL
            run = (b & 3) + 1
            if idx + run > HLL_REGISTERS:
                return None
            raw[idx : idx + run] = _VAL_RUNS[((b >> 2) & 0x1F) + 1][:run]
            p += 1
        elif b & 0x40:  # XZERO
            run = ((b & 0x3F) << 8 | (value[p + 1] if p + 1 < end else 0)) + 1
            if idx + run > HLL_REGISTERS:
                return None
            p += 2
        else:  # ZERO
            run = b + 1
            if idx + run > HLL_REGISTERS:
                return None
            p += 1
        idx += run
    return raw if idx == HLL_REGISTERS else None


def _raw_of(value: bytes | bytearray) -> bytearray | None:
    return _dense_raw(value) if value[4] == HLL_DENSE else _sparse_raw(value)


_HIGH_BITS = int.from_bytes(b"\x80" * HLL_REGISTERS, "little")


def _raw_max(a: int, b: int) -> int:
    """Per-byte max of two raw register arrays as little-endian integers (bytes < 128):
    (a|0x80)-b keeps its top bit per byte exactly where a >= b, without borrows."""
    ge = (((a | _HIGH_BITS) - b) & _HIGH_BITS) >> 7
    mask = ge * 255
    return (a & mask) | (b & ~mask)


_ONE_BYTE = [bytes((v,)) for v in range(256)]


def _histogram_of(registers: bytes) -> list[int]:
    """Register histogram (values 0..Q+1; Redis ignores anything above) of raw registers,
    in bulk: each value's count is what deleting it removes, and deleting the most
    frequent values first (their order guessed from a sample) leaves little to scan
    for the rarer ones."""
    hist = [0] * 256
    rest = registers
    for v, _n in Counter(registers[::61]).most_common():
        size = len(rest)
        rest = rest.translate(None, _ONE_BYTE[v])
        hist[v] = size - len(rest)
    v = 0
    while rest:
        if not hist[v]:
            size = len(rest)
            rest = rest.translate(None, _ONE_BYTE[v])
            hist[v] = size - len(rest)
        v += 1
    return hist[: HLL_Q + 2]


def _sparse_histogram(value: bytes | bytearray) -> list[int] | None:
    hist = [0] * 64
    idx = 0
    p = HLL_HDR_SIZE
    end = len(value)
    while p < end:
        b = value[p]
        if b & 0x80:
            run = (b & 3) + 1
            if idx + run > HLL_REGISTERS:
                return None
            hist[((b >> 2) & 0x1F) + 1] += run
            p += 1
        else:
            if b & 0x40:
                run = ((b & 0x3F) << 8 | (value[p + 1] if p + 1 < end else 0)) + 1
                p += 2
            else:
                run = b + 1
                p += 1
            if idx + run > HLL_REGISTERS:
                return None
            hist[0] += run
        idx += run
    return hist if idx == HLL_REGISTERS else None


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y = 1.0
    z = x
    while True:
        x *= x
        z_prime = z
        z += x * y
        y += y
        if z_prime == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y = 1.0
    z = 1 - x
    while True:
        x = math.sqrt(x)
        z_prime = z
        y *= 0.5
        z -= math.pow(1 - x, 2) * y
        if z_prime == z:
            return z / 3


def estimate(hist: list[int]) -> int:
    """hllCount's estimate from a register histogram (Ertl's estimator, Redis 7)."""
    m = float(HLL_REGISTERS)
    z = m * _tau((m - hist[HLL_Q + 1]) / m)
    for j in range(HLL_Q, 0, -1):
        z += hist[j]
        z *= 0.5
    z += m * _sigma(hist[0] / m)
    e = HLL_ALPHA_INF * m * m / z
    whole = math.floor(e)  # llroundl: halves away from zero
    return int(whole + 1 if e - whole >= 0.5 else whole)


def _count(value: bytes | bytearray) -> int | None:
    """The estimated cardinality of a valid HLL value; None if it is corrupted."""
    if value[4] == HLL_DENSE:
        return estimate(_histogram_of(b"".join(_dense_planes(value))))
    hist = _sparse_histogram(value)
    return None if hist is None else estimate(hist)


# ------------------------------------------------------------------ changing registers


def _dense_set(buf: bytearray, index: int, count: int) -> bool:
    """hllDenseSet: raise register `index` to `count`; True if it changed."""
    bit = index * 6
    pos = HLL_HDR_SIZE + (bit >> 3)
    fb = bit & 7
    if fb <= 2:
        if (buf[pos] >> fb) & 63 >= count:
            return False
        buf[pos] = (buf[pos] & ~(63 << fb) & 0xFF) | (count << fb)
        return True
    b0 = buf[pos]
    b1 = buf[pos + 1]
    if ((b0 >> fb) | (b1 << (8 - fb))) & 63 >= count:
        return False
    buf[pos] = (b0 & ~(63 << fb) & 0xFF) | ((count << fb) & 0xFF)
    buf[pos + 1] = (b1 & ~(63 >> (8 - fb))) | (count >> (8 - fb))
    return True


def _to_dense(buf: bytearray) -> bool:
    """hllSparseToDense, in place (the header is kept, encoding set to dense);
    False (nothing changed) if the sparse value is corrupted."""
    if buf[4] == HLL_DENSE:
        return True
    raw = _sparse_raw(buf)
    if raw is None:
        return False
    header = bytearray(buf[:HLL_HDR_SIZE])
    header[4] = HLL_DENSE
    buf[:] = header + _raw_to_dense(raw)
    return True


def _zero_op(length: int) -> bytes:
    if length > ZERO_MAX_LEN:
        length -= 1
        return bytes((0x40 | (length >> 8), length & 0xFF))
    return bytes((length - 1,))


def _val_op(value: int, length: int) -> int:
    return 0x80 | ((value - 1) << 2) | (length - 1)


_XZERO_BYTE = re.compile(rb"[\x40-\x7f]")
# the registers a one-byte opcode covers (XZERO first bytes: 0, handled apart)
_SPAN1 = bytes(b + 1 if b < 0x40 else (b & 3) + 1 if b & 0x80 else 0 for b in range(256))
_CHUNK = 128  # opcodes summed at a time while skipping a run
_UNKNOWN = -2  # a previous opcode not known (from a resume point)
_START = (HLL_HDR_SIZE, 0, -1)  # scan from the first opcode


def _locate(
    buf: bytearray, index: int, p: int, first: int, prev: int, prev2: int
) -> tuple[int, int, int, int, int] | None:
    """Step 1 of hllSparseSet: the opcode covering register `index`, scanning from
    opcode `p` (covering registers from `first`; `prev`, `prev2` the two opcodes before
    it): (its position, its first register, its span, the opcode before it, the one
    before that), None if the value ends first (corrupted). Runs of one-byte opcodes
    (everything between two XZEROs) are summed and searched at C speed: a byte in
    0x40-0x7f after a run of one-byte opcodes can only be an XZERO's first byte."""
    end = len(buf)
    search = _XZERO_BYTE.search
    while p < end:
        found = search(buf, p)
        q = found.start() if found is not None else end
        if q > p:
            spans = buf[p:q].translate(_SPAN1)
            # skip whole chunks by their sums, then search the chunk holding the register
            chunk = 0
            size = q - p
            while chunk < size:
                total = sum(spans[chunk : chunk + _CHUNK])
                if first + total > index:
                    cumulative = list(accumulate(spans[chunk : chunk + _CHUNK]))
                    k = bisect_right(cumulative, index - first)
                    opcode_first = first + (cumulative[k - 1] if k else 0)
                    at = chunk + k  # offset of the opcode in the run
                    if at >= 2:
                        return p + at, opcode_first, spans[at], p + at - 1, p + at - 2
                    if at == 1:
                        return p + 1, opcode_first, spans[1], p, prev
                    return p, first, spans[0], prev, prev2
                first += total
                chunk += _CHUNK
            prev2 = q - 2 if q - p >= 2 else prev
            prev = q - 1
            p = q
            if p >= end:
                break
        span = ((buf[p] & 0x3F) << 8 | (buf[p + 1] if p + 1 < end else 0)) + 1
        if index < first + span:
            return p, first, span, prev, prev2
        prev2 = prev
        prev = p
        first += span
        p += 2
    return None


def _sparse_set(
    buf: bytearray,
    index: int,
    count: int,
    max_bytes: int,
    resume: tuple[int, int, int] = (HLL_HDR_SIZE, 0, -1),
) -> tuple[int, tuple[int, int, int]]:
    """hllSparseSet: raise register `index` to `count` in a sparse value, editing it as
    Redis does (promoting it to dense when needed). Returns 1 changed / 0 not / -1
    corrupted, and a resume point (opcode position, its first register, the opcode
    before it or _UNKNOWN) from which a later call for a higher register may scan
    instead of from the start: nothing before that opcode changed."""
    if count > SPARSE_VAL_MAX:
        return _promote(buf, index, count), _START
    p, first, prev = resume
    located = _locate(buf, index, p, first, prev, _UNKNOWN)
    if located is not None and located[3] == _UNKNOWN:
        located = _locate(buf, index, HLL_HDR_SIZE, 0, -1, -1)  # its previous opcode is needed
    if located is None:
        return -1, _START
    p, first, span, prev, prev2 = located
    after = (prev, first - _span_at(buf, prev), prev2) if prev >= 0 else _START
    b = buf[p]
    if b & 0x80:  # VAL
        curval = ((b >> 2) & 0x1F) + 1
        if curval >= count:
            return 0, after
        if span == 1:
            buf[p] = _val_op(count, 1)
            _merge_vals(buf, prev)
            return 1, after
        seq = bytearray()
        if index != first:
            seq.append(_val_op(curval, index - first))
        seq.append(_val_op(count, 1))
        last = first + span - 1
        if index != last:
            seq.append(_val_op(curval, last - index))
        oldlen = 1
    else:
        is_xzero = bool(b & 0x40)
        if not is_xzero and span == 1:
            buf[p] = _val_op(count, 1)
            _merge_vals(buf, prev)
            return 1, after
        seq = bytearray()
        if index != first:
            seq += _zero_op(index - first)
        seq.append(_val_op(count, 1))
        last = first + span - 1
        if index != last:
            seq += _zero_op(last - index)
        oldlen = 2 if is_xzero else 1
    # Step 3: put the new sequence in place of the old opcode.
    end = len(buf)
    delta = len(seq) - oldlen
    if delta > 0 and end + delta > max_bytes:
        return _promote(buf, index, count), _START
    buf[p : p + oldlen] = seq
    if len(buf) > end + delta:  # a truncated XZERO at the very end (corrupted value)
        del buf[end + delta :]
    _merge_vals(buf, prev)
    return 1, after



def _span_at(buf: bytearray, p: int) -> int:
    b = buf[p]
    if b & 0x80:
        return (b & 3) + 1
    if b & 0x40:
        return ((b & 0x3F) << 8 | (buf[p + 1] if p + 1 < len(buf) else 0)) + 1
    return b + 1


def _merge_vals(buf: bytearray, prev: int) -> None:
    """Step 4 of hllSparseSet: merge adjacent VAL opcodes of the same value (up to 5
    opcodes from the one before the change), then invalidate the cached cardinality."""
    p = prev if prev >= 0 else HLL_HDR_SIZE
    end = len(buf)
    scan = 5
    while p < end and scan:
        scan -= 1
        b = buf[p]
        if not b & 0x80:
            p += 2 if b & 0x40 else 1
            continue
        if p + 1 < end:
            c = buf[p + 1]
            if c & 0x80 and (b & 0x7C) == (c & 0x7C):
                length = (b & 3) + (c & 3) + 2
                if length <= 4:
                    buf[p + 1] = (c & 0xFC) | (length - 1)
                    del buf[p]
                    end -= 1
                    continue
        p += 1
    buf[15] |= 0x80


def _promote(buf: bytearray, index: int, count: int) -> int:
    if not _to_dense(buf):
        return -1
    _dense_set(buf, index, count)
    return 1


def _invalidate(buf: bytearray) -> None:
    buf[15] |= 0x80


# ------------------------------------------------------------------ commands


@command("pfadd", -2, "write denyoom fast", (1, 1, 1))
def pfadd(ctx: Context, argv: list[bytes]) -> bytes:
    key = argv[1]
    keyspace = ctx.keyspace
    value = _hll_value(ctx, key, write=True)
    updated = 0
    if value is None:
        buf = bytearray(EMPTY_SPARSE)
        keyspace.set_key(key, buf)
        updated = 1
    elif value is False:
        return ERR_NOT_HLL
    else:
        buf = _unshared(ctx, key, value)  # type: ignore[arg-type]
    max_bytes = ctx.config.hll_sparse_max_bytes
    for element in argv[2:]:
        h = murmurhash64a(element)
        rest = (h >> HLL_P) | _PATTERN_GUARD
        count = (rest & -rest).bit_length()
        index = h & HLL_P_MASK
        if buf[4] == HLL_DENSE:
            # hllDenseSet, inlined
            bit = index * 6
            pos = HLL_HDR_SIZE + (bit >> 3)
            fb = bit & 7
            if fb <= 2:
                b0 = buf[pos]
                if (b0 >> fb) & 63 < count:
                    buf[pos] = (b0 & ~(63 << fb) & 0xFF) | (count << fb)
                    updated += 1
            else:
                b0 = buf[pos]
                b1 = buf[pos + 1]
                if ((b0 >> fb) | (b1 << (8 - fb))) & 63 < count:
                    buf[pos] = (b0 & ~(63 << fb) & 0xFF) | ((count << fb) & 0xFF)
                    buf[pos + 1] = (b1 & ~(63 >> (8 - fb))) | (count >> (8 - fb))
                    updated += 1
            continue
        result = _sparse_set(buf, index, count, max_bytes)[0]
        if result < 0:
            if updated:
                # Redis keeps the partial change without propagating it; log its bytes
                # so that replay holds what clients see
                ctx.aof_feed([b"SET", key, bytes(buf), b"KEEPTTL"])
            return ERR_INVALID
        updated += result
    if not updated:
        return ZERO
    buf[15] |= 0x80
    keyspace.modified(key)
    ctx.aof_feed(argv)
    keyspace.notify(NOTIFY_STRING, b"pfadd", key)
    return ONE


@command("pfcount", -2, "readonly", (1, -1, 1))
def pfcount(ctx: Context, argv: list[bytes]) -> bytes:
    if len(argv) > 2:
        merged = 0
        for key in argv[1:]:
            value = _hll_value(ctx, key, write=False)
            if value is None:
                continue
            if value is False:
                return ERR_NOT_HLL
            raw = _raw_of(value)  # type: ignore[arg-type]
            if raw is None:
                return ERR_INVALID
            merged = _raw_max(merged, int.from_bytes(raw, "little"))
        registers = merged.to_bytes(HLL_REGISTERS, "little")
        return resp.integer(estimate(_histogram_of(registers)))
    key = argv[1]
    value = _hll_value(ctx, key, write=False)
    if value is None:
        return ZERO
    if value is False:
        return ERR_NOT_HLL
    buf = _unshared(ctx, key, value)  # type: ignore[arg-type]
    if not buf[15] & 0x80:
        return resp.integer(int.from_bytes(buf[8:16], "little"))
    card = _count(buf)
    if card is None:
        return ERR_INVALID
    buf[8:16] = card.to_bytes(8, "little")
    # the cache is part of the string: a change, logged so that replay writes it too
    ctx.keyspace.modified(key)
    ctx.aof_feed(argv)
    return resp.integer(card)


_NONZERO = re.compile(rb"[^\x00]")


@command("pfmerge", -2, "write denyoom", (1, -1, 1))
def pfmerge(ctx: Context, argv: list[bytes]) -> bytes:
    merged = 0
    use_dense = False
    for key in argv[1:]:
        value = _hll_value(ctx, key, write=False)
        if value is None:
            continue
        if value is False:
            return ERR_NOT_HLL
        if value[4] == HLL_DENSE:  # type: ignore[index]
            use_dense = True
        raw = _raw_of(value)  # type: ignore[arg-type]
        if raw is None:
            return ERR_INVALID
        merged = _raw_max(merged, int.from_bytes(raw, "little"))
    registers = merged.to_bytes(HLL_REGISTERS, "little")
    dest = argv[1]
    keyspace = ctx.keyspace
    current = keyspace.lookup_write(dest)
    if current is None:
        buf = bytearray(EMPTY_SPARSE)
        keyspace.set_key(dest, buf)
    else:
        buf = _unshared(ctx, dest, current)
    if use_dense:
        if not _to_dense(buf):
            return ERR_INVALID
        buf[HLL_HDR_SIZE:] = _raw_to_dense(registers)
    else:
        max_bytes = ctx.config.hll_sparse_max_bytes
        resume = _START
        for match in _NONZERO.finditer(registers):
            j = match.start()
            if buf[4] == HLL_DENSE:
                _dense_set(buf, j, registers[j])
            else:
                resume = _sparse_set(buf, j, registers[j], max_bytes, resume)[1]
    buf[15] |= 0x80
    keyspace.modified(dest)
    ctx.aof_feed(argv)
    keyspace.notify(NOTIFY_STRING, b"pfadd", dest)  # Redis's event for PFMERGE too
    return resp.OK


_INT_REPLIES = [b":%d\r\n" % v for v in range(64)]


@command("pfdebug", 3, "write denyoom admin", (2, 2, 1))
def pfdebug(ctx: Context, argv: list[bytes]) -> bytes:
    sub = argv[1].split(b"\0", 1)[0]
    name = sub.lower()
    key = argv[2]
    value = _hll_value(ctx, key, write=True)
    if value is None:
        return b"-ERR The specified key does not exist\r\n"
    if value is False:
        return ERR_NOT_HLL
    buf = _unshared(ctx, key, value)  # type: ignore[arg-type]
    if name == b"getreg":
        if buf[4] == HLL_SPARSE:
            if not _to_dense(buf):
                return ERR_INVALID
            ctx.aof_feed(argv)  # Redis propagates the conversion (no WATCH signal)
        size = 16 + 4 * HLL_REGISTERS
        if size > ctx.output_limit:
            raise ReplyTooLarge
        raw = _dense_raw(buf)
        return b"*%d\r\n" % HLL_REGISTERS + b"".join([_INT_REPLIES[v] for v in raw])
    if name == b"decode":
        if buf[4] != HLL_SPARSE:
            return b"-ERR HLL encoding is not sparse\r\n"
        return resp.bulk(_decode(buf))
    if name == b"encoding":
        return b"+dense\r\n" if buf[4] == HLL_DENSE else b"+sparse\r\n"
    if name == b"todense":
        if buf[4] == HLL_DENSE:
            return ZERO
        if not _to_dense(buf):
            return ERR_INVALID
        ctx.aof_feed(argv)  # as GETREG: propagated, WATCH not signalled
        return ONE
    return error_quoting("Unknown PFDEBUG subcommand '", sub)


def _decode(buf: bytearray) -> bytes:
    """PFDEBUG DECODE: the sparse opcodes as text."""
    parts = []
    p = HLL_HDR_SIZE
    end = len(buf)
    while p < end:
        b = buf[p]
        if b & 0x80:
            parts.append(b"v:%d,%d" % (((b >> 2) & 0x1F) + 1, (b & 3) + 1))
            p += 1
        elif b & 0x40:
            parts.append(b"Z:%d" % (((b & 0x3F) << 8 | (buf[p + 1] if p + 1 < end else 0)) + 1))
            p += 2
        else:
            parts.append(b"z:%d" % (b + 1))
            p += 1
    return b" ".join(parts)


@command("pfselftest", 1, "admin")
def pfselftest(ctx: Context, argv: list[bytes]) -> bytes:
    """A shorter self-test than Redis's (which adds 10 million elements): register access
    round trips, and dense and sparse estimates agreeing within the expected error."""
    import random

    rng = random.Random()
    dense = bytearray(HLL_DENSE_SIZE)
    for _ in range(3):
        values = bytes(rng.randrange(64) for _ in range(HLL_REGISTERS))
        dense[HLL_HDR_SIZE:] = _raw_to_dense(values)
        if _dense_raw(dense) != values:
            return b"-TESTFAILED register round trip\r\n"
    dense = bytearray(b"HYLL" + bytes(HLL_DENSE_SIZE - 4))
    sparse = bytearray(EMPTY_SPARSE)
    seed = rng.getrandbits(64)
    checkpoint = 1
    for j in range(1, 20001):
        element = (j ^ seed).to_bytes(8, "little")
        index, count = _pattern(element)
        _dense_set(dense, index, count)
        if sparse[4] == HLL_SPARSE:
            _sparse_set(sparse, index, count, ctx.config.hll_sparse_max_bytes)
        else:
            _dense_set(sparse, index, count)
        if j == checkpoint:
            card = _count(dense)
            if card != _count(sparse):
                return b"-TESTFAILED dense/sparse disagree\r\n"
            assert card is not None
            maxerr = 1 if j == 10 else math.ceil(1.04 / math.sqrt(HLL_REGISTERS) * 6 * j)
            if abs(j - card) > maxerr:
                return b"-TESTFAILED Too big error. card:%d abserr:%d\r\n" % (j, abs(j - card))
            checkpoint *= 10
    return resp.OK

