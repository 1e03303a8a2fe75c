"""maxmemory: Redis's approximated eviction (evict.c: performEvictions and its
eviction pool), sans-IO.

Before a command that may grow memory (flagged `denyoom`) runs, and while the
dataset estimate (kvred/memory.py) is over `maxmemory`, keys are evicted by
`maxmemory-policy`:

- allkeys-/volatile-lru, -lfu, volatile-ttl: `maxmemory-samples` keys of each
  database (of all its keys, or of those with a TTL) are scored and offered to a
  pool of EVPOOL_SIZE candidates that survives between calls; the best scored one
  still there is evicted. The score is the idle time (LRU: now minus the LRU clock
  of the last access), 255 minus the decayed LFU counter (LFU), or minus the expiry
  time (TTL: the soonest to expire goes first). Keys accessed before tracking began
  have no entry and count as the oldest (LRU) or as new (LFU);
- allkeys-/volatile-random: a random key, each database in turn;
- noeviction, or nothing left to evict: EVICT_FAIL, and the command gets -OOM.

An eviction is propagated as DEL, touches watchers, fires the `evicted` event and
counts in evicted_keys (Keyspace.evict). One call evicts for at most the time
`maxmemory-eviction-tenacity` allows (as Redis: 50 us per step up to 10, then 15%
more per step, 100 without limit), checked every 16 keys; past it the command runs
anyway (EVICT_RUNNING) and the next command or the cron goes on, as Redis's
evictionTimeProc.

Pricing the dataset on every write (a multiply per database) took a SET from about
1.1 to 1.8 us of writer time; instead `check()` keeps a headroom, the bytes left under
maxmemory when it last looked, and takes each write's arguments plus
COMMAND_GROWTH_BYTES off it: it looks again only once that is spent (and the cron looks
every 100 ms), so no command can grow the dataset past the limit unseen.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .keyspace import TRACK_LFU, TRACK_LRU, TRACK_NONE
from .lfu import LFU_COUNTER_MAX, LFU_INIT_VAL, lfu_decayed

if TYPE_CHECKING:
    from .keyspace import Databases, Keyspace
    from .memory import DatasetEstimate

__all__ = [
    "Evictor",
    "EVICT_OK",
    "EVICT_RUNNING",
    "EVICT_FAIL",
    "EVPOOL_SIZE",
    "ERR_OOM",
    "tracking_for",
    "eviction_time_limit_us",
]

EVICT_OK = 0
EVICT_RUNNING = 1
EVICT_FAIL = 2
EVPOOL_SIZE = 16  # Redis's EVPOOL_SIZE
EVICT_CHECK_EVERY = 16  # keys between two looks at the clock, as Redis
ERR_OOM = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
# What one command is assumed to add at most, besides its arguments' bytes: a key's
# overhead in the keyspace's tables (kvred/memory.py prices it at about 200 bytes).
COMMAND_GROWTH_BYTES = 256


def tracking_for(policy: str, track_key_access: bool) -> int:
    """What keys' access entries must hold (kvred/keyspace.py TRACK_*) for a policy."""
    if policy.endswith("-lfu"):
        return TRACK_LFU
    if policy.endswith("-lru") or track_key_access:
        return TRACK_LRU
    return TRACK_NONE


def eviction_time_limit_us(tenacity: int) -> int | None:
    """Redis's evictionTimeLimitUs; None: no limit (tenacity 100)."""
    if tenacity <= 10:
        return 50 * tenacity
    if tenacity < 100:
        return int(500 * 1.15 ** (tenacity - 10))
    return None


class Evictor:
    """performEvictions, with the pool kept between calls. Reads the policy, the
    samples and the tenacity from `config` at each call (CONFIG SET takes effect)."""

    __slots__ = ("databases", "config", "estimate", "pool", "_next_db", "headroom", "_headroom_limit", "failing")

    def __init__(self, databases: Databases, config: Any, estimate: DatasetEstimate) -> None:
        self.databases = databases
        self.config = config
        self.estimate = estimate
        # (score, database index, key), ascending: the best candidate is last
        self.pool: list[tuple[int, int, bytes]] = []
        self._next_db = 0  # where the random policies look next
        self.headroom = 0  # bytes writes may add before the next look (see the module's docstring)
        self._headroom_limit = 0  # the maxmemory it was computed for
        self.failing = False  # the last perform() found nothing it may evict

    def over_limit(self) -> int:
        """Bytes over maxmemory (0 or less: under it, or no limit)."""
        limit = self.config.maxmemory
        if not limit:
            return 0
        return self.estimate.dataset_bytes(self.databases.dbs) - limit

    def out_of_memory(self) -> bool:
        """Over maxmemory with nothing to evict: what a command queued in MULTI meets."""
        if self.over_limit() <= 0:
            return False
        return self.config.maxmemory_policy == "noeviction" or self.failing

    def check(self, argv: list[bytes]) -> int:
        """Before a denyoom command: perform() once its growth may have spent the headroom."""
        self.headroom -= sum(map(len, argv)) + COMMAND_GROWTH_BYTES
        if self.headroom > 0 and self._headroom_limit == self.config.maxmemory:
            return EVICT_OK
        return self.perform()

    def perform(self) -> int:
        """Evict until under maxmemory: EVICT_OK, EVICT_RUNNING (out of time, still over:
        the command may run), EVICT_FAIL (over, and nothing may be evicted: -OOM)."""
        over: float = self.over_limit()
        self._headroom_limit = self.config.maxmemory
        self.failing = False
        if over <= 0:
            self.headroom = int(-over)
            return EVICT_OK
        self.headroom = 0
        policy = self.config.maxmemory_policy
        if policy == "noeviction" or self.databases.loading:
            return EVICT_FAIL
        limit_us = eviction_time_limit_us(self.config.maxmemory_eviction_tenacity)
        deadline = None if limit_us is None else time.perf_counter() + limit_us / 1e6
        averages = self.estimate.averages
        evicted = 0
        while over > 0:
            found = self._pick(policy)
            if found is None:
                self.failing = True
                return EVICT_FAIL  # nothing left that this policy may evict
            db, key = found
            over -= averages[db.id] or 1  # what the estimate loses with the key
            db.evict(key)
            evicted += 1
            if evicted % EVICT_CHECK_EVERY == 0 and deadline is not None and time.perf_counter() > deadline:
                return EVICT_RUNNING if self.over_limit() > 0 else EVICT_OK
        self.headroom = int(-over)
        return EVICT_OK

    def _pick(self, policy: str) -> tuple[Keyspace, bytes] | None:
        volatile = policy.startswith("volatile-")
        if policy.endswith("-random"):
            return self._pick_random(volatile)
        return self._pick_from_pool(policy, volatile)

    def _pick_random(self, volatile: bool) -> tuple[Keyspace, bytes] | None:
        dbs = self.databases.dbs
        for i in range(len(dbs)):
            db = dbs[(self._next_db + i) % len(dbs)]
            key = db.expire_order.pick(db.expires) if volatile else db.order.pick(db.data)
            if key is not None:
                self._next_db = (db.id + 1) % len(dbs)
                return db, key
        return None

    def _pick_from_pool(self, policy: str, volatile: bool) -> tuple[Keyspace, bytes] | None:
        dbs = self.databases.dbs
        pool = self.pool
        while True:
            sampled = False
            for db in dbs:
                live = db.expires if volatile else db.data
                if live:
                    self._populate(db, policy, volatile)
                    sampled = True
            if not sampled:
                return None
            # the best candidate that still exists (and still has a TTL, for volatile-*)
            while pool:
                _score, index, key = pool.pop()
                db = dbs[index]
                if key in (db.expires if volatile else db.data):
                    return db, key
            # every pooled key was gone: sample again (Redis loops the same way)

    def _populate(self, db: Keyspace, policy: str, volatile: bool) -> None:
        """evictionPoolPopulate: score `maxmemory-samples` keys of `db`, keep the best."""
        live = db.expires if volatile else db.data
        pick = db.expire_order.pick if volatile else db.order.pick
        pool = self.pool
        samples = self.config.maxmemory_samples
        seen: set[bytes] = set()
        for _ in range(samples if len(live) > samples else len(live)):
            key = pick(live)
            if key is None or key in seen:
                continue
            seen.add(key)
            score = self._score(db, key, policy)
            if len(pool) >= EVPOOL_SIZE and score <= pool[0][0]:
                continue  # no better than the worst pooled: Redis skips it too
            if any(entry[2] == key and entry[1] == db.id for entry in pool):
                continue
            entry = (score, db.id, key)
            # insert in order (the pool is 16 entries: a scan beats bisect with tuples)
            i = len(pool)
            while i > 0 and pool[i - 1][0] > score:
                i -= 1
            pool.insert(i, entry)
            if len(pool) > EVPOOL_SIZE:
                del pool[0]  # the worst goes

    def _score(self, db: Keyspace, key: bytes, policy: str) -> int:
        """Higher: a better candidate for eviction."""
        if policy == "volatile-ttl":
            return -db.expires.get(key, 0)
        word = db.access.get(key)
        if policy.endswith("-lfu"):
            if word is None or db.track != TRACK_LFU:
                return LFU_COUNTER_MAX - LFU_INIT_VAL  # a new key
            counter = lfu_decayed(word, self.databases.lfu_minutes, self.config.lfu_decay_time)
            return LFU_COUNTER_MAX - counter
        if word is None or db.track != TRACK_LRU:
            return db.clock  # never seen since tracking began: the oldest
        return db.clock - word
