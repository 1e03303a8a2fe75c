"""What the writer keeps per client (Redis's `client` struct, the writer's half of it).

A worker's `Connection` (kvred/connection.py) holds what belongs to one socket:
the parser, the reply order, the MULTI queue, AUTH. The writer holds, per client
id, what commands share across workers: the selected database, the keys it WATCHes,
its name (CLIENT LIST), and replies deferred until the AOF can take them. Sans-IO:
`link` is whatever the writer uses to reach the client's worker.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .keyspace import Keyspace

__all__ = ["WriterClient"]


class WriterClient:
    __slots__ = (
        "id",
        "addr",
        "laddr",
        "name",
        "created",
        "resp",
        "link",
        "db",
        "watched",
        "dirty_cas",
        "owed",
        "queued",
    )

    def __init__(self, client_id: int, addr: str, laddr: str, link: Any) -> None:
        self.id = client_id
        self.addr = addr
        self.laddr = laddr
        self.name = b""
        self.created = time.monotonic()
        self.resp = 2
        self.link = link
        self.db = 0  # SELECTed database
        # WATCH: (database, key, the key had already expired when watched); EXEC fails if dirty_cas
        self.watched: list[tuple[Keyspace, bytes, bool]] = []
        self.dirty_cas = False
        # While deferred (an `always` pass of this client could not be synced): the
        # replies it is owed, in order, and the request entries that wait behind them.
        self.owed: list[Any] = []
        self.queued: list[list[Any]] = []
