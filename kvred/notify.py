"""notify-keyspace-events: the setting's letters <-> flag bits (Redis's notify.c).

The events themselves are published by `Keyspace.notify` (kvred/keyspace.py), called
by each command family with its class and Redis's event name; this module only
translates the setting, which is given at start-up or with CONFIG SET.
"""

from __future__ import annotations

__all__ = ["parse_flags", "format_flags", "NOTIFY_ALL"]

# the flag bits, Redis's values
NOTIFY_KEYSPACE = 1 << 0  # K
NOTIFY_KEYEVENT = 1 << 1  # E
NOTIFY_GENERIC = 1 << 2  # g
NOTIFY_STRING = 1 << 3  # $
NOTIFY_LIST = 1 << 4  # l
NOTIFY_SET = 1 << 5  # s
NOTIFY_HASH = 1 << 6  # h
NOTIFY_ZSET = 1 << 7  # z
NOTIFY_EXPIRED = 1 << 8  # x
NOTIFY_EVICTED = 1 << 9  # e
NOTIFY_STREAM = 1 << 10  # t
NOTIFY_KEY_MISS = 1 << 11  # m (not part of A)
NOTIFY_MODULE = 1 << 13  # d
NOTIFY_NEW = 1 << 14  # n (not part of A)



# the classes in the order Redis prints them
_CLASSES = (
    ("g", NOTIFY_GENERIC),
    ("$", NOTIFY_STRING),
    ("l", NOTIFY_LIST),
    ("s", NOTIFY_SET),
    ("h", NOTIFY_HASH),
    ("z", NOTIFY_ZSET),
    ("x", NOTIFY_EXPIRED),
    ("e", NOTIFY_EVICTED),
    ("t", NOTIFY_STREAM),
    ("d", NOTIFY_MODULE),
)
NOTIFY_ALL = 0
for _letter, _bit in _CLASSES:
    NOTIFY_ALL |= _bit
_OTHERS = (("K", NOTIFY_KEYSPACE), ("E", NOTIFY_KEYEVENT), ("m", NOTIFY_KEY_MISS), ("n", NOTIFY_NEW))
_LETTERS = {letter: bit for letter, bit in _CLASSES + _OTHERS}
_LETTERS["A"] = NOTIFY_ALL


def parse_flags(text: str) -> int | None:
    """The flag bits of a setting such as "KEA" or "Kx"; None if a letter is unknown."""
    flags = 0
    for letter in text:
        bit = _LETTERS.get(letter)
        if bit is None:
            return None
        flags |= bit
    return flags


def format_flags(flags: int) -> str:
    """The setting as CONFIG GET shows it: "A" for every class, else the classes then
    'n'; then K, E, m. As Redis 7.0's keyspaceEventsFlagsToString, "A" hides an 'n'."""
    if flags & NOTIFY_ALL == NOTIFY_ALL:
        text = "A"
    else:
        text = "".join(letter for letter, bit in _CLASSES if flags & bit)
        if flags & NOTIFY_NEW:
            text += "n"
    return text + "".join(letter for letter, bit in _OTHERS if flags & bit and bit != NOTIFY_NEW)
