"""The command table: `name -> Command(handler, arity, flags, keys)`.

Families register their handlers with `@command` when imported, one module per
family as Redis's source files: `strings` (t_string.c: GET, SET, INCR...), `keys`
(db.c: DEL, SCAN, RENAME, SELECT, MOVE...), `expire` (expire.c: EXPIRE, TTL...),
`multi` (WATCH), `object` (OBJECT), `debug` (DEBUG), `server` (PING, CONFIG,
CLIENT, INFO, and the connection commands the worker runs), and one module per value
type: `lists` (t_list.c), `hashes` (t_hash.c), `sets` (t_set.c), `zsets` (t_zset.c),
`bitops` (bitops.c: SETBIT, BITCOUNT, BITFIELD...), `hyperloglog` (hyperloglog.c),
`sort` (sort.c), `pubsub` (pubsub.c), `streams` (t_stream.c), `stream_read` (XREAD),
`stream_groups` (consumer groups), `stream_claim` (XCLAIM, XAUTOCLAIM) and `stream_info` (XINFO); `scanning` is HSCAN/SSCAN/ZSCAN's shared iteration.
"""

from . import (  # noqa: F401  (importing registers the commands)
    bitops,
    debug,
    expire,
    hashes,
    hyperloglog,
    keys,
    lists,
    multi,
    object,
    observe,
    pubsub,
    scripting,
    server,
    sets,
    sort,
    stream_claim,
    stream_groups,
    stream_info,
    stream_read,
    streams,
    strings,
    zsets,
)
from .base import COMMANDS, Command, lookup, unknown_command, wrong_arity

# Names (as stored: lowercase and uppercase) of the commands only the writer runs and
# the worker need not look at (it follows (un)subscriptions and answers CLIENT REPLY,
# kvred/connection.py).
FORWARDED_NAMES = frozenset(
    name
    for name, cmd in COMMANDS.items()
    if cmd.handler is not None and not cmd.local and cmd.name not in pubsub.SUBSCRIPTION_COMMANDS
    and cmd.name != "client"  # CLIENT REPLY belongs to the worker
)

__all__ = ["COMMANDS", "FORWARDED_NAMES", "Command", "lookup", "unknown_command", "wrong_arity"]
