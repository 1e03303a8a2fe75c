"""The command table: `name -> Command(handler, arity, flags, keys)`.

Families register their handlers with `@command` when imported, one module per
family as Redis's source files: `strings` (t_string.c: GET, SET, INCR...), `keys`
(db.c: DEL, SCAN, RENAME, SELECT, MOVE...), `expire` (expire.c: EXPIRE, TTL...),
`multi` (WATCH), `object` (OBJECT), `debug` (DEBUG), and `server` (PING, CONFIG,
CLIENT, INFO, and the connection commands the worker runs).
"""

from . import debug, expire, keys, multi, object, server, strings  # noqa: F401  (importing registers the commands)
from .base import COMMANDS, Command, lookup, unknown_command, wrong_arity

# Names (as stored: lowercase and uppercase) of the commands only the writer runs.
FORWARDED_NAMES = frozenset(name for name, cmd in COMMANDS.items() if cmd.handler is not None and not cmd.local)

__all__ = ["COMMANDS", "FORWARDED_NAMES", "Command", "lookup", "unknown_command", "wrong_arity"]
