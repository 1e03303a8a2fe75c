"""OBJECT (Redis's object.c): how a key's value is kept, its references, its idle time.

kvred stores values as Python objects, so ENCODING answers what Redis would use for
the same value (each type says, kvred/valuetypes.py): a string is `int` when it is a 64-bit integer of at most 20
characters, `embstr` up to 44 bytes, `raw` beyond or once changed in place (APPEND,
SETRANGE). REFCOUNT is Redis's: shared small integers (0 to 9999) report
2147483647, everything else 1. IDLETIME is the seconds since the key was last
read or written (the LRU clock in kvred/keyspace.py), kept only with
--track-key-access yes or an LRU maxmemory-policy (it costs 8-13% of writer-bound
throughput); without it, IDLETIME says so in an error rather than answer a number it
does not know. FREQ is the key's LFU counter (kvred/lfu.py), kept under an LFU
maxmemory-policy, and Redis's error under any other; IDLETIME under an LFU policy
is Redis's error too (the access entry holds the counter, not a time).
"""

from __future__ import annotations

from .. import resp
from ..eviction import tracking_for
from ..valuetypes import string_as_integer, value_type
from .base import Context, command

__all__: list[str] = []

OBJ_SHARED_INTEGERS = 10000  # Redis shares the integer objects 0..9999
OBJ_SHARED_REFCOUNT = 2147483647
ERR_IDLE_NOT_TRACKED = (
    b"-ERR Idle time not tracked: kvred records key access times only when started with "
    b"--track-key-access yes, which costs throughput.\r\n"
)
ERR_LFU_SELECTED = (
    b"-ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when "
    b"switching between policies at runtime LRU and LFU data will take some time to adjust.\r\n"
)
ERR_NO_LFU = (
    b"-ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when "
    b"switching between policies at runtime LRU and LFU data will take some time to adjust.\r\n"
)
_HELP = [
    b"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"ENCODING <key>",
    b"    Return the kind of internal representation used in order to store the value",
    b"    associated with a <key>.",
    b"FREQ <key>",
    b"    Return the access frequency index of the <key>. The returned integer is",
    b"    proportional to the logarithm of the recent access frequency of the key.",
    b"IDLETIME <key>",
    b"    Return the idle time of the <key>, that is the approximated number of",
    b"    seconds elapsed since the last access to the key.",
    b"REFCOUNT <key>",
    b"    Return the number of references of the value associated with the specified",
    b"    <key>.",
    b"HELP",
    b"    Prints this help.",
]


@command("object", -2, "", subcommands={"encoding": 3, "refcount": 3, "idletime": 3, "freq": 3, "help": 2})
def object_(ctx: Context, argv: list[bytes]) -> bytes:
    """(The command table checks the subcommand and its arity.)"""
    sub = argv[1].lower()
    if sub == b"help":
        return resp.array([resp.simple(line) for line in _HELP])
    keyspace, key = ctx.keyspace, argv[2]
    value = keyspace.peek(key, miss_event=False)  # OBJECT does not count as an access, nor notify a miss
    if value is None:
        return ctx.null
    if sub == b"encoding":
        kind = value_type(value)
        return resp.bulk(b"raw" if kind is None else kind.encoding(value))
    if sub == b"refcount":
        number = string_as_integer(value)
        shared = number is not None and 0 <= number < OBJ_SHARED_INTEGERS
        return resp.integer(OBJ_SHARED_REFCOUNT if shared else 1)
    config = ctx.config
    lfu = config.maxmemory_policy.endswith("-lfu")
    # the policy may have just changed: what the access entries hold follows it now
    ctx.databases.set_tracking(tracking_for(config.maxmemory_policy, config.track_key_access))
    if sub == b"idletime":
        if lfu:
            return ERR_LFU_SELECTED
        if not keyspace.track:
            return ERR_IDLE_NOT_TRACKED
        return resp.integer(keyspace.idle_seconds(key))
    if not lfu:
        return ERR_NO_LFU
    return resp.integer(keyspace.lfu_counter(key))
