"""The command table: `name -> Command(handler, arity, flags, keys)`.

Families register their handlers with `@command` when imported:
`strings` (GET, SET, INCR, ...), `keys` (DEL, SCAN, RENAME, ...) and `server`
(PING, CONFIG, CLIENT, INFO, and the connection commands the worker runs).
"""

from . import keys, server, strings  # noqa: F401  (importing registers the commands)
from .base import COMMANDS, Command, lookup, unknown_command, wrong_arity

__all__ = ["COMMANDS", "Command", "lookup", "unknown_command", "wrong_arity"]
