"""The keys and channels a command names, and what it does with each key (read, write),
from Redis 7.0's key specs (kvred/acl_table.py), as Redis's getKeysFromCommandWithSpecs
finds them for the ACL; sans-IO. Checked against redis-server's COMMAND GETKEYSANDFLAGS
(tests/test_acl.py). The few commands whose specs leave the answer to code (SET's GET,
BITFIELD's GETs, SORT's STORE, MIGRATE's KEYS) have it here."""

from __future__ import annotations

from .acl_table import ACL_COMMAND_TABLE

__all__ = ["READ", "WRITE", "command_keys", "command_channels"]

READ, WRITE = 1, 2  # what a key spec's flags ask of a key pattern (%R~, %W~; ~ is both)


def _need(flags: tuple[str, ...]) -> int:
    return (READ if "access" in flags else 0) | (WRITE if {"insert", "delete", "update"} & set(flags) else 0)


# name -> [(READ/WRITE needed, flags, begin_search, find_keys)], computed once; SSUBSCRIBE's
# shard channels (not_key) are channels, not keys, for the ACL
_SPECS = {name: [(_need(flags), flags, begin, find) for flags, begin, find in specs if "not_key" not in flags]
          for name, (_cats, specs) in ACL_COMMAND_TABLE.items()}


def command_keys(name: str, argv: list[bytes]) -> list[tuple[int, bytes, int]]:
    """(position, key, READ/WRITE needed) for each key of `argv`, from the command's key specs
    (Redis's getKeysUsingKeySpecs), with the few commands whose specs leave it to code."""
    specs = _SPECS.get(name)
    if not specs:
        return []
    out: list[tuple[int, bytes, int]] = []
    argc = len(argv)
    for need, flags, begin, find in specs:
        if name == "set" and not any(a.lower() == b"get" for a in argv[3:]):
            need = WRITE  # SET's flags depend on GET (Redis's setGetKeys)
        elif name == "bitfield" and not any(a.lower() in (b"set", b"incrby") for a in argv[2:]):
            need = READ  # BITFIELD with GETs only reads (Redis's bitfieldGetKeys)
        if begin[0] == "index":
            start = begin[1]
            if name == "migrate" and argv[start:start + 1] == [b""]:
                continue  # MIGRATE ... "" ... KEYS k...: the keys come after KEYS
        elif begin[0] == "keyword":
            word = begin[1].encode().lower()
            startfrom = begin[2]
            rng = range(startfrom, argc) if startfrom > 0 else range(argc + startfrom, 0, -1)
            start = 0
            for i in rng:
                if argv[i].lower() == word:
                    start = i + 1
                    break
            if not start:
                continue
        else:
            if name == "sort":
                out.extend(_sort_keys(argv, flags))
            continue
        if start >= argc:
            continue
        if find[0] == "range":
            lastkey, step, limit = find[1], find[2], find[3]
            if lastkey >= 0:
                last = start + lastkey
            elif limit > 1:
                last = start + (argc - start) // limit - 1
            else:
                last = argc + lastkey
            positions = range(start, min(last, argc - 1) + 1, step)
        elif find[0] == "keynum":
            numidx, first, step = find[1], find[2], find[3]
            try:
                count = int(argv[start + numidx])
            except (ValueError, IndexError):
                continue
            begin_at = start + first
            positions = range(begin_at, min(begin_at + max(count, 0) * step, argc), step)
        else:
            continue
        out.extend((i, argv[i], need) for i in positions)
    return out


def _sort_keys(argv: list[bytes], flags: tuple[str, ...]) -> list[tuple[int, bytes, int]]:
    """SORT's STORE destination (its unknown key spec, Redis's sortGetKeys)."""
    if "update" not in flags:
        return []
    for i in range(2, len(argv) - 1):
        if argv[i].lower() == b"store":
            return [(i + 1, argv[i + 1], WRITE)]
    return []


_CHANNEL_COMMANDS = {"publish": (1, 2, False), "spublish": (1, 2, False), "subscribe": (1, None, False),
                     "ssubscribe": (1, None, False), "psubscribe": (1, None, True)}


def command_channels(name: str, argv: list[bytes]) -> list[tuple[int, bytes, bool]]:
    spec = _CHANNEL_COMMANDS.get(name)
    if spec is None:
        return []
    first, end, is_pattern = spec
    stop = len(argv) if end is None else min(end, len(argv))
    return [(i, argv[i], is_pattern) for i in range(first, stop)]
