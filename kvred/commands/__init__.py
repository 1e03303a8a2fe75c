"""The command table: `name -> Command(handler, arity, flags, keys)`.

Families register their handlers with `@command` when imported:
`strings` (GET, SET, INCR, ...), `keys` (DEL, SCAN, RENAME, ...) and `server`
(PING, CONFIG, CLIENT, INFO, and the connection commands the worker runs).
"""

from . import keys, server, strings  # noqa: F401  (importing registers the commands)
from .base import COMMANDS, Command, lookup, unknown_command, wrong_arity

# Names (as stored: lowercase and uppercase) of the commands only the writer runs.
FORWARDED_NAMES = frozenset(name for name, cmd in COMMANDS.items() if cmd.handler is not None and not cmd.local)

__all__ = ["COMMANDS", "FORWARDED_NAMES", "Command", "lookup", "unknown_command", "wrong_arity"]
