"""Redis 7.0.15's description of each command kvred implements (table.json), and what
COMMAND answers from it: INFO and DOCS entries in RESP2 or RESP3, LIST filters, and the
key positions of COMMAND GETKEYS (Redis's key specs, with its getkeys procedures for the
commands whose specs cannot say everything).

table.json is generated from a running redis-server by tools/gen_command_table.py; see
there for its JSON shape. Sans-IO: this module only builds bytes.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from .. import resp
from ..glob import compile_glob

__all__ = [
    "TABLE",
    "REDIS_VERSION",
    "entry",
    "info_reply",
    "docs_pair",
    "list_names",
    "find_keys",
    "has_keys",
    "key_flags_reply",
]

_DATA = json.loads((Path(__file__).parent / "table.json").read_text())
REDIS_VERSION: str = _DATA["redis_version"]
# name -> row: arity, flags, first_key, last_key, step, acl_categories, tips, key_specs,
# subcommands (name -> row of the same shape), docs
TABLE: dict[str, dict[str, Any]] = _DATA["commands"]


def entry(fullname: str) -> tuple[str, dict[str, Any]] | None:
    """The row of `name` or `container|sub` (case-insensitive), with its full name."""
    name, _, sub = fullname.lower().partition("|")
    row = TABLE.get(name)
    if row is None or not sub:
        return (name, row) if row is not None else None
    subrow = row["subcommands"].get(sub)
    return (f"{name}|{sub}", subrow) if subrow is not None else None


def encode(node: Any, resp3: bool) -> bytes:
    """A table.json tree as Redis sends it: maps and sets flatten to arrays in RESP2."""
    if isinstance(node, str):
        return resp.bulk(node.encode())
    if isinstance(node, bool) or node is None:
        raise TypeError(node)
    if isinstance(node, int):
        return resp.integer(node)
    if isinstance(node, list):
        return b"*%d\r\n" % len(node) + b"".join([encode(item, resp3) for item in node])
    if "+" in node and len(node) == 1:
        return resp.simple(node["+"].encode())
    if "~" in node and len(node) == 1:
        items = node["~"]
        return b"%s%d\r\n" % (b"~" if resp3 else b"*", len(items)) + b"".join([encode(i, resp3) for i in items])
    head = b"%%%d\r\n" % len(node) if resp3 else b"*%d\r\n" % (2 * len(node))
    return head + b"".join([encode(k, resp3) + encode(v, resp3) for k, v in node.items()])


def _status_set(names: list[str], resp3: bool) -> bytes:
    return b"%s%d\r\n" % (b"~" if resp3 else b"*", len(names)) + b"".join(
        [resp.simple(n.encode()) for n in names]
    )


def _set(items: list[bytes], resp3: bool) -> bytes:
    return b"%s%d\r\n" % (b"~" if resp3 else b"*", len(items)) + b"".join(items)


def _info(fullname: str, row: dict[str, Any], resp3: bool) -> bytes:
    subs = row["subcommands"]
    if subs:  # a container answers an array of its subcommands, a plain command an empty set
        sub_reply = b"*%d\r\n" % len(subs) + b"".join(
            [_info(f"{fullname}|{name}", subrow, resp3) for name, subrow in subs.items()]
        )
    else:
        sub_reply = _set([], resp3)
    return b"".join(
        [
            b"*10\r\n",
            resp.bulk(fullname.encode()),
            resp.integer(row["arity"]),
            _status_set(row["flags"], resp3),
            resp.integer(row["first_key"]),
            resp.integer(row["last_key"]),
            resp.integer(row["step"]),
            _status_set(row["acl_categories"], resp3),
            _set([resp.bulk(tip.encode()) for tip in row["tips"]], resp3),
            _set([encode(spec, resp3) for spec in row["key_specs"]], resp3),
            sub_reply,
        ]
    )


@lru_cache(maxsize=1024)
def info_reply(fullname: str, resp3: bool) -> bytes | None:
    """COMMAND INFO's entry for a command (None if kvred does not implement it)."""
    found = entry(fullname)
    return None if found is None else _info(found[0], found[1], resp3)


@lru_cache(maxsize=1024)
def docs_pair(fullname: str, resp3: bool) -> bytes | None:
    """COMMAND DOCS's name and entry for a command (None if kvred does not implement it)."""
    found = entry(fullname)
    if found is None:
        return None
    name = found[0]
    container, _, sub = name.partition("|")
    # a subcommand's documentation is inside its container's, as Redis nests it
    docs = TABLE[container]["docs"]["subcommands"][name] if sub else found[1]["docs"]
    return resp.bulk(name.encode()) + encode(docs, resp3)


def all_names() -> list[str]:
    return list(TABLE)


def _acl_category(name: str) -> str | None:
    wanted = "@" + name.lower()
    for row in TABLE.values():
        for cat in row["acl_categories"]:
            if cat.lower() == wanted:
                return cat
        for subrow in row["subcommands"].values():
            for cat in subrow["acl_categories"]:
                if cat.lower() == wanted:
                    return cat
    return None


def list_names(filter_type: str | None, arg: bytes) -> list[str]:
    """COMMAND LIST [FILTERBY MODULE|ACLCAT|PATTERN arg]: full names, containers followed
    by their subcommands, as Redis walks its table."""
    rows: list[tuple[str, dict[str, Any]]] = []
    for name, row in TABLE.items():
        rows.append((name, row))
        rows.extend((f"{name}|{sub}", subrow) for sub, subrow in row["subcommands"].items())
    if filter_type is None:
        return [name for name, _ in rows]
    if filter_type == "module":
        return []  # kvred loads no modules
    if filter_type == "aclcat":
        category = _acl_category(arg.decode(errors="replace"))
        return [name for name, row in rows if category is not None and category in row["acl_categories"]]
    match = compile_glob(arg, nocase=True).match
    return [name for name, _ in rows if match(name.encode())]


# ---------------------------------------------------------------- COMMAND GETKEYS

# A key's flags as GETKEYSANDFLAGS lists them: Redis's order (addReplyFlagsForKeyArgs).
KEY_FLAG_ORDER = ("RO", "RW", "OW", "RM", "access", "update", "insert", "delete", "not_key", "incomplete",
                  "variable_flags")


def key_flags_reply(flags: tuple[str, ...], resp3: bool) -> bytes:
    return _status_set([f for f in KEY_FLAG_ORDER if f in flags], resp3)


Found = list[tuple[int, tuple[str, ...]]]  # (argv index, key flags)


def _spec_flags(spec: dict[str, Any]) -> tuple[str, ...]:
    return tuple(flag["+"] for flag in spec["flags"]["~"])


def has_keys(row: dict[str, Any], name: str) -> bool:
    """Redis's doesCommandHaveKeys: a getkeys procedure, or a spec that is not `not_key`."""
    return name in _GETKEYS_PROCS or any("not_key" not in _spec_flags(s) for s in row["key_specs"])


def _string2ll(arg: bytes) -> int | None:
    return resp.parse_strict_int(arg)


def _keys_by_specs(row: dict[str, Any], argv: list[bytes]) -> Found | None:
    """Redis's getKeysUsingKeySpecs: None where a spec cannot be followed (Redis then
    falls back to the command's getkeys procedure)."""
    argc = len(argv)
    found: Found = []
    for spec in row["key_specs"]:
        flags = _spec_flags(spec)
        if "not_key" in flags:
            continue
        begin, fk = spec["begin_search"], spec["find_keys"]
        if begin["type"] == "index":
            first = begin["spec"]["index"]
        elif begin["type"] == "keyword":
            keyword = begin["spec"]["keyword"].lower().encode()
            start = begin["spec"]["startfrom"]
            start_index = start if start > 0 else argc + start
            end_index = argc - 1 if start > 0 else 1
            first = 0
            i = start_index
            while i != end_index:
                if i >= argc or i < 1:
                    break
                if argv[i].lower() == keyword:
                    first = i + 1
                    break
                i = i + 1 if start_index <= end_index else i - 1
            if not first:
                continue  # keyword not found: this spec has no keys
        else:
            return None
        if fk["type"] == "range":
            step = fk["spec"]["keystep"]
            lastkey, limit = fk["spec"]["lastkey"], fk["spec"]["limit"]
            if lastkey >= 0:
                last = first + lastkey
            elif not limit:
                last = argc + lastkey
            else:
                last = first + ((argc - first) // limit + lastkey)
        elif fk["type"] == "keynum":
            step = fk["spec"]["keystep"]
            keynumidx = fk["spec"]["keynumidx"]
            if first + keynumidx >= argc:
                return None
            numkeys = _string2ll(argv[first + keynumidx])
            if numkeys is None or numkeys < 0:
                return None
            first += fk["spec"]["firstkey"]
            last = first + numkeys - 1
        else:
            return None
        if last >= argc or last < first or first >= argc:
            return None
        for i in range(first, last + 1, step):
            found.append((i, flags))
        if "incomplete" in flags:
            return None
    return found


def _atoi(arg: bytes) -> int:
    """C's atoi, which Redis's getkeys procedures use: leading digits, else 0."""
    text = arg.lstrip(b" \t\n\v\f\r")
    sign = 1
    if text[:1] in (b"-", b"+"):
        sign = -1 if text[:1] == b"-" else 1
        text = text[1:]
    digits = b""
    for c in text:
        if not 48 <= c <= 57:
            break
        digits += bytes([c])
    return sign * int(digits) if digits else 0


def _generic(store: int, count_at: int, first: int) -> Any:
    """Redis's genericGetKeys: `numkeys key...` at fixed places (and a destination)."""

    def proc(argv: list[bytes]) -> Found:
        num = _atoi(argv[count_at])
        if num < 1 or num > len(argv) - first:
            return []  # the command will answer a syntax error
        found: Found = [(first + i, ()) for i in range(num)]
        if store:
            found.append((store, ()))
        return found

    return proc


def _sort_keys(argv: list[bytes]) -> Found:
    found: Found = [(1, ("RO", "access"))]
    store: tuple[int, tuple[str, ...]] | None = None
    skips = {b"limit": 2, b"get": 1, b"by": 1}
    i = 2
    while i < len(argv):
        arg = argv[i].lower()
        if arg in skips:
            i += skips[arg]
        elif arg == b"store" and i + 1 < len(argv):
            store = (i + 1, ("OW", "update"))  # the last STORE wins, as in SORT
        i += 1
    return found + [store] if store else found


def _set_keys(argv: list[bytes]) -> Found:
    if any(arg.lower() == b"get" for arg in argv[3:]):
        return [(1, ("RW", "access", "update"))]
    return [(1, ("OW", "update"))]


def _bitfield_keys(argv: list[bytes]) -> Found:
    readonly = True
    i = 2
    argc = len(argv)
    while i < argc:
        remaining = argc - i - 1
        arg = argv[i].lower()
        if arg == b"get" and remaining >= 2:
            i += 2
        elif arg in (b"set", b"incrby") and remaining >= 3:
            readonly = False
            break
        elif arg == b"overflow" and remaining >= 1:
            i += 1
        else:
            readonly = False  # a syntax error: assume it writes
            break
        i += 1
    return [(1, ("RO", "access") if readonly else ("RW", "access", "update"))]


def _xread_keys(argv: list[bytes]) -> Found:
    streams_at = -1
    i = 1
    while i < len(argv):
        arg = argv[i].lower()
        if arg in (b"block", b"count"):
            i += 1
        elif arg == b"group":
            i += 2
        elif arg == b"streams":
            streams_at = i
            break
        elif arg != b"noack":
            break
        i += 1
    num = len(argv) - streams_at - 1
    if streams_at == -1 or num == 0 or num % 2:
        return []
    return [(i, ()) for i in range(streams_at + 1, len(argv) - num // 2)]


# Redis's getkeys procedures (cmd->getkeys_proc) of the commands kvred implements
_GETKEYS_PROCS: dict[str, Any] = {
    "zunionstore": _generic(1, 2, 3),
    "zinterstore": _generic(1, 2, 3),
    "zdiffstore": _generic(1, 2, 3),
    "zunion": _generic(0, 1, 2),
    "zinter": _generic(0, 1, 2),
    "zdiff": _generic(0, 1, 2),
    "zintercard": _generic(0, 1, 2),
    "sintercard": _generic(0, 1, 2),
    "lmpop": _generic(0, 1, 2),
    "zmpop": _generic(0, 1, 2),
    "blmpop": _generic(0, 2, 3),
    "bzmpop": _generic(0, 2, 3),
    "eval": _generic(0, 2, 3),
    "evalsha": _generic(0, 2, 3),
    "eval_ro": _generic(0, 2, 3),
    "evalsha_ro": _generic(0, 2, 3),
    "fcall": _generic(0, 2, 3),
    "fcall_ro": _generic(0, 2, 3),
    "sort": _sort_keys,
    "sort_ro": lambda argv: [(1, ("RO", "access"))],
    "set": _set_keys,
    "bitfield": _bitfield_keys,
    "xread": _xread_keys,
    "xreadgroup": _xread_keys,
}


def find_keys(name: str, row: dict[str, Any], argv: list[bytes]) -> Found:
    """Redis's getKeysFromCommandWithSpecs: the specs when they can say it all (no spec
    with variable flags, none that fails), else the command's getkeys procedure."""
    flags = [_spec_flags(spec) for spec in row["key_specs"]]
    has_spec = any("not_key" not in f for f in flags)
    variable = any("variable_flags" in f for f in flags)
    if has_spec and not variable:
        found = _keys_by_specs(row, argv)
        if found is not None:
            return found
    proc = _GETKEYS_PROCS.get(name)
    return proc(argv) if proc is not None else []
