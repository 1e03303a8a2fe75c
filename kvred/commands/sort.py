"""SORT and SORT_RO (Redis's sort.c): the elements of a list, set or sorted set, sorted
numerically or as strings, by themselves or by weights in other keys, with LIMIT, GET
projections and STORE.

Redis's rules kept here:
- numeric by default: each element (or BY weight) must be a whole C double (strtod,
  leading white space allowed, nothing after it, not NaN, no overflow), else "One or
  more scores can't be converted into double"; a missing BY weight counts as 0;
- ALPHA compares bytes (strcoll in the C locale); with BY, a missing weight sorts first;
- equal weights fall back to comparing the elements' bytes, so the order is total;
  DESC reverses the whole comparison;
- a BY pattern without `*` means "do not sort" (the key's own order: a list's, a sorted
  set's by score, a set's); a set is still sorted as strings when the result is STOREd,
  so the stored list, and its replay, do not depend on hashing order;
- GET `#` is the element; `pattern` substitutes the element for the first `*`, and
  `key->field` reads a hash field; anything missing or of another type is nil (an empty
  string when STOREd);
- STORE replaces the destination with a list (deleted if the result is empty) and
  answers its length.
"""

from __future__ import annotations

import functools
import math
import re
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

from .. import resp
from ..keyspace import Keyspace, WrongType
from ..notify import NOTIFY_GENERIC, NOTIFY_LIST
from ..valuetypes import STRING_TYPES, value_type
from .base import ERR_NOT_INT, ERR_SYNTAX, Context, ReplyTooLarge, command, int_arg

__all__: list[str] = []

ERR_NOT_DOUBLE = b"-ERR One or more scores can't be converted into double\r\n"
_SORTABLE = (b"list", b"set", b"zset")
_STRTOD = re.compile(
    rb"[ \t\n\v\f\r]*([+-]?)(?:"
    rb"(0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?)"
    rb"|((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    rb"|(inf(?:inity)?)|(nan(?:\([0-9A-Za-z_]*\))?))\Z",
    re.IGNORECASE,
)


def strtod_whole(text: bytes) -> float | None:
    """`text` as a C double when strtod consumes all of it without a range error and
    the result is not NaN (sort.c's rule); None otherwise."""
    m = _STRTOD.fullmatch(text)
    if m is None:
        return None
    sign, hexa, decimal, infinite, _nan = m.groups()
    if infinite:
        return -math.inf if sign == b"-" else math.inf
    if hexa:
        if b"p" not in hexa.lower() and b"." in hexa and hexa.endswith(b"."):
            hexa = hexa[:-1]
        try:
            value = float.fromhex(hexa.decode())
        except (OverflowError, ValueError):
            return None
        digits = hexa[2:]
    elif decimal:
        value = float(decimal)
        digits = decimal
    else:
        return None  # NaN
    if math.isinf(value):
        return None  # overflow: ERANGE
    if value == 0.0 and any(c in b"123456789abcdefABCDEF" for c in digits.split(b"p")[0].split(b"P")[0]
                            .split(b"e")[0].split(b"E")[0]):
        return None  # underflow to zero: ERANGE
    if 0.0 < abs(value) < sys.float_info.min:
        return None  # a subnormal result: glibc reports ERANGE too
    return -value if sign == b"-" else value


def _lookup_by_pattern(keyspace: Keyspace, pattern: bytes, element: bytes) -> bytes | None:
    """sort.c's lookupKeyByPattern: the string (or hash field) `pattern` names for
    `element`, None when there is none."""
    if pattern == b"#":
        return element
    star = pattern.find(b"*")
    if star < 0:
        return None
    arrow = pattern.find(b"->", star + 1)
    field = None
    if arrow >= 0 and arrow + 2 < len(pattern):
        field = pattern[arrow + 2 :]
        key = pattern[:star] + element + pattern[star + 1 : arrow]
    else:
        key = pattern[:star] + element + pattern[star + 1 :]
    value = keyspace.lookup_read(key)
    if value is None:
        return None
    if field is None:
        return bytes(value) if type(value) in STRING_TYPES else None
    kind = value_type(value)
    if kind is None or kind.name != b"hash":
        return None
    found = value.get(field)
    return None if found is None else bytes(found)


def _parse(argv: list[bytes], read_only: bool) -> tuple[Any, ...] | bytes:
    """(sort_by, desc, alpha, limit, gets, store) or the error reply."""
    sort_by: bytes | None = None
    desc = alpha = False
    limit: tuple[int, int] | None = None
    gets: list[bytes] = []
    store: bytes | None = None
    i = 2
    n = len(argv)
    while i < n:
        opt = argv[i].lower()
        left = n - i - 1
        if opt == b"asc":
            desc = False
        elif opt == b"desc":
            desc = True
        elif opt == b"alpha":
            alpha = True
        elif opt == b"limit" and left >= 2:
            offset, count = int_arg(argv[i + 1]), int_arg(argv[i + 2])
            if offset is None or count is None:
                return ERR_NOT_INT
            limit = (offset, count)
            i += 2
        elif opt == b"store" and left >= 1 and not read_only:
            store = argv[i + 1]
            i += 1
        elif opt == b"by" and left >= 1:
            sort_by = argv[i + 1]
            i += 1
        elif opt == b"get" and left >= 1:
            gets.append(argv[i + 1])
            i += 1
        else:
            return ERR_SYNTAX
        i += 1
    return sort_by, desc, alpha, limit, gets, store


def _sort(ctx: Context, argv: list[bytes], read_only: bool) -> bytes:
    parsed = _parse(argv, read_only)
    if isinstance(parsed, bytes):
        return parsed
    sort_by, desc, alpha, limit, gets, store = parsed
    keyspace = ctx.keyspace
    value = keyspace.lookup_read(argv[1])
    name = b"list"
    if value is not None:
        kind = value_type(value)
        if kind is None or kind.name not in _SORTABLE:
            raise WrongType
        name = kind.name
    dont_sort = sort_by is not None and b"*" not in sort_by
    if dont_sort and name == b"set" and store is not None:
        dont_sort, sort_by, alpha = False, None, True  # a stored set's order must not depend on hashing
    total = 0 if value is None else len(value)
    offset, count = (0, -1) if limit is None else limit
    start = min(max(offset, 0), total)
    count = min(max(count, -1), total)
    end = total - 1 if count < 0 else start + count - 1
    if start >= total:
        start, end = total - 1, total - 2
    end = min(end, total - 1)
    if value is None:
        chosen: list[bytes] = []
    elif dont_sort and name in (b"list", b"zset"):
        # the key's own order (a sorted set's by score), from the end with DESC
        ordered = value if name == b"list" else (member for _score, member in value.ordered)
        elements = list(ordered)
        if desc:
            elements.reverse()
        chosen = elements[start : end + 1]
    else:
        if name == b"zset":
            elements = [member for _score, member in value.ordered]
        elif name == b"set" and value_type(value).encoding(value) == b"intset":  # type: ignore[union-attr]
            elements = sorted(value, key=int)  # an intset iterates in ascending order
        else:
            elements = list(value)
        if not dont_sort:
            result = _sorted(keyspace, elements, sort_by, alpha, desc)
            if result is None:
                return ERR_NOT_DOUBLE
            elements = result
        chosen = elements[start : end + 1]
    if store is None:
        return _reply(ctx, keyspace, chosen, gets)
    rows: list[bytes] = []
    for element in chosen:
        if gets:
            rows.extend(_lookup_by_pattern(keyspace, g, element) or b"" for g in gets)
        else:
            rows.append(element)
    changed = False
    if rows:
        keyspace.set_key(store, deque(rows))  # a list (kvred/commands/lists.py)
        changed = True
        keyspace.notify(NOTIFY_LIST, b"sortstore", store)
    elif keyspace.lookup_write(store) is not None:
        changed = keyspace.delete(store)
        if changed:
            keyspace.notify(NOTIFY_GENERIC, b"del", store)
    if changed:
        ctx.aof_feed(argv)
    return resp.integer(len(rows))


def _sorted(keyspace: Keyspace, elements: list[bytes], sort_by: bytes | None, alpha: bool,
            desc: bool) -> list[bytes] | None:
    """The elements in SORT's order; None if a weight is not a double."""
    if sort_by is None:
        weights: list[Any] = elements if alpha else [strtod_whole(e) for e in elements]
    else:
        looked = [_lookup_by_pattern(keyspace, sort_by, e) for e in elements]
        weights = looked if alpha else [0.0 if w is None else strtod_whole(w) for w in looked]
    if not alpha and any(w is None for w in weights):
        return None
    pairs = list(zip(weights, elements, strict=True))
    pairs.sort(key=functools.cmp_to_key(_compare(alpha and sort_by is not None)), reverse=desc)
    return [element for _weight, element in pairs]


def _compare(by_pattern: bool) -> Callable[[tuple[Any, bytes], tuple[Any, bytes]], int]:
    """sortCompare. Equal ALPHA weights from a BY pattern (missing ones included) compare
    equal and keep the key's order (the sort is stable, as glibc's qsort is)."""

    def cmp(a: tuple[Any, bytes], b: tuple[Any, bytes]) -> int:
        wa, wb = a[0], b[0]
        if by_pattern:
            if wa is None or wb is None:
                return 0 if wa is wb else (-1 if wa is None else 1)
            return 0 if wa == wb else (-1 if wa < wb else 1)
        if wa != wb:
            return -1 if wa < wb else 1
        return 0 if a[1] == b[1] else (-1 if a[1] < b[1] else 1)

    return cmp


def _reply(ctx: Context, keyspace: Keyspace, chosen: list[bytes], gets: list[bytes]) -> bytes:
    null = ctx.null
    limit = ctx.output_limit
    parts: list[bytes] = []
    size = 0
    for element in chosen:
        for item in ([_lookup_by_pattern(keyspace, g, element) for g in gets] if gets else [element]):
            part = null if item is None else b"$%d\r\n%b\r\n" % (len(item), item)
            parts.append(part)
            size += len(part)
        if size > limit:
            raise ReplyTooLarge
    return b"*%d\r\n" % len(parts) + b"".join(parts)


@command("sort", -2, "write denyoom", (1, 1, 1))
def sort(ctx: Context, argv: list[bytes]) -> bytes:
    return _sort(ctx, argv, read_only=False)


@command("sort_ro", -2, "readonly", (1, 1, 1))
def sort_ro(ctx: Context, argv: list[bytes]) -> bytes:
    return _sort(ctx, argv, read_only=True)
