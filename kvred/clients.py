"""What the writer keeps per client (Redis's `client` struct, the writer's half of it).

A worker's `Connection` (kvred/connection.py) holds what belongs to one socket:
the parser, the reply order, the MULTI queue, AUTH. The writer holds, per client
id, what commands share across workers: the selected database, the keys it WATCHes,
its name (CLIENT LIST), its subscriptions, whether it waits in a blocking command,
and replies deferred until the AOF can take them or until it is served. Sans-IO:
`link` is whatever the writer uses to reach the client's worker.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .blocking import Blocked
    from .keyspace import Keyspace
    from .tracking import TrackingState

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
        "answered",
        "blocked",
        "channels",
        "patterns",
        "shard_channels",
        "monitor",
        "last_command",
        "tracking",
        "stats",
        "user",
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
        # Entries answered so far (not counting deferred ones): a push to this client is
        # delivered by its worker after that many replies, which keeps pushes in order
        # with the replies of other links' clients (kvred/ipc.py).
        self.answered = 0
        self.blocked: Blocked | None = None  # waiting in a blocking command (kvred/blocking.py)
        # pub/sub subscriptions (kvred/pubsub.py), in subscription order
        self.channels: dict[bytes, None] = {}
        self.patterns: dict[bytes, None] = {}
        self.shard_channels: dict[bytes, None] = {}
        self.monitor = False  # MONITOR: gets every command the writer runs
        self.last_command: Any = None  # its last entry's last argv (CLIENT LIST cmd=)
        self.tracking: TrackingState | None = None  # CLIENT TRACKING on (kvred/tracking.py)
        # [fd, idle s, multi, qbuf, multi-mem, omem, events] from its worker, once a second
        self.stats: list[Any] = [-1, 0, -1, 0, 0, 0, "r"]
        # its ACL user (kvred/acl.py's User); None: an internal client with every permission
        self.user: Any = None
