"""Optimistic locking (Redis's multi.c): WATCH and UNWATCH.

MULTI, EXEC and DISCARD queue and send in the worker (kvred/connection.py); the
writer runs EXEC (kvred/execute.py), which fails with a null array when a watched
key changed since WATCH: any write by any client on any worker, expiry, FLUSHDB,
FLUSHALL, SWAPDB, RENAME, MOVE. EXEC, DISCARD, RESET and a disconnect unwatch.
WATCH inside MULTI is refused by the worker, before it reaches here.
"""

from __future__ import annotations

from .. import resp
from ..keyspace import unwatch_all
from .base import Context, command

__all__: list[str] = []


@command("watch", -2, "noscript loading stale fast", (1, -1, 1))
def watch(ctx: Context, argv: list[bytes]) -> bytes:
    keyspace, client = ctx.keyspace, ctx.client
    for key in argv[1:]:
        keyspace.watch(client, key)
    return resp.OK


@command("unwatch", 1, "noscript loading stale fast")
def unwatch(ctx: Context, argv: list[bytes]) -> bytes:
    unwatch_all(ctx.client)
    return resp.OK
