"""The keyspace: Redis's databases (`serverDb`, src/db.c, src/expire.c), sans-IO.

`Databases` is the server's N databases and what their keys share: the time a
command sees, the propagation of deletions to the AOF, the loading flag, the LRU
clock, statistics. `Keyspace` is one database: its keys, their TTLs, their last
access, the clients that WATCH them, and the order of its keys (kvred/keyorder.py:
SCAN, random picks, expiry scans in bounded time). Handlers reach keys only
through these methods, never through the raw dicts.

Expiry, as Redis 7.0 does it:
- lazily: every lookup of a key whose TTL has passed deletes it first; the
  deletion is propagated as DEL (so the AOF and its replay see what clients saw)
  and its watchers are touched;
- actively: `active_expire_cycle()` from the writer's cron walks the keys that have
  a TTL, 20 at a time, again while more than 10% of a walk had expired, within a
  time budget. Redis spends up to 25 ms of each 100 ms; a key costs kvred about ten
  times what it costs Redis, so a million keys expiring in the same second keep the
  cycle busy for seconds, and one 25 ms slice is a 25 ms wait for every client. The
  writer runs the cycle in 5 ms slices, every 20 ms while it is behind (the same
  quarter of the time), every 100 ms otherwise;
- never while the AOF loads: replay must see the keys its commands saw; what
  expired meanwhile is removed when loading ends (`expire_after_load`).
A command sees one time (`now_ms`); EXEC freezes it for the whole transaction,
as Redis's command time snapshot does, so a key cannot expire halfway through one.

TTLs are absolute unix milliseconds. Last access (OBJECT IDLETIME, OBJECT FREQ and
maxmemory's LRU/LFU eviction, kvred/eviction.py) is kept only when
`Databases.track_access` is on (--track-key-access, or an LRU/LFU maxmemory-policy):
one more dict entry touched per lookup cost 8-13% of GET/SET throughput when the
writer is the limit (bench/, redis-benchmark -P 16), the cache misses of a second
per-key table. Under LRU an entry is the LRU clock in ms, one shared int object per
cron tick (100 ms), so `access` costs an entry per key, not an int; under LFU it is
Redis's 24-bit word (kvred/lfu.py), an int per key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sized
from typing import Any, Protocol

from .keyorder import BLOCK, KeyOrder
from .lfu import LFU_INIT_VAL, lfu_decayed, lfu_log_incr, lfu_minutes
from .notify import (
    NOTIFY_EVICTED,
    NOTIFY_EXPIRED,
    NOTIFY_GENERIC,
    NOTIFY_KEY_MISS,
    NOTIFY_KEYEVENT,
    NOTIFY_KEYSPACE,
    NOTIFY_NEW,
)

__all__ = [
    "Databases",
    "Keyspace",
    "WrongType",
    "Watcher",
    "time_ms",
    "ACTIVE_EXPIRE_KEYS_PER_LOOP",
    "TRACK_NONE",
    "TRACK_LRU",
    "TRACK_LFU",
]

# what `Keyspace.access` holds per key (Databases.set_tracking)
TRACK_NONE = 0  # nothing: no policy needs it and --track-key-access is off
TRACK_LRU = 1  # the LRU clock (unix ms, advanced by the cron) of the last access
TRACK_LFU = 2  # Redis's LFU word: minutes of the last decrement << 8 | 8-bit counter

ACTIVE_EXPIRE_KEYS_PER_LOOP = 20  # Redis's ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP
ACTIVE_EXPIRE_ACCEPTABLE_STALE = 10  # percent: walk again while more than this had expired (Redis 7.0)
ACTIVE_EXPIRE_BUDGET_S = 0.005  # per cycle; the writer repeats it every 20 ms while it is behind
COMPACTION_BUDGET_S = 0.001  # per cron tick, for key-order compactions under way


def time_ms() -> int:
    return time.time_ns() // 1_000_000


class _DefaultLfu:
    """Redis's LFU defaults, for a keyspace made without a Config (tests, tools)."""

    lfu_log_factor = 10
    lfu_decay_time = 1


class WrongType(Exception):
    """A key holds another type than the command works on: -WRONGTYPE (the writer's
    call() turns it into the reply). Raised before the command changed anything."""


class Watcher(Protocol):
    """What WATCH needs of a client (kvred/writer.py's WriterClient)."""

    watched: list[tuple[Keyspace, bytes, bool]]  # (database, key, already expired when watched)
    dirty_cas: bool  # a watched key changed: EXEC fails


def _propagate_nothing(db: int, argv: list[bytes]) -> None:
    pass


def _publish_nowhere(channel: bytes, message: bytes) -> int:
    return 0


class Databases:
    """The N databases and what they share."""

    def __init__(self, count: int = 16, track_access: bool = False, config: Any = None) -> None:
        # unix ms, advanced by the cron (100 ms steps): one shared int object per tick
        self.lru_clock = time_ms()
        self.lfu_minutes = lfu_minutes()  # Redis's LFUGetTimeInMinutes, advanced by the cron
        # TRACK_*: what each key's access entry holds (each Keyspace copies it)
        self.track_access = TRACK_LRU if track_access else TRACK_NONE
        # lfu-log-factor and lfu-decay-time are read from it at use time (kvred/config.py)
        self.config = config if config is not None else _DefaultLfu()
        # notify-keyspace-events as flag bits (kvred/notify.py); each Keyspace keeps a
        # copy, read on the hot paths. `publish(channel, message)` is set by the writer.
        self.notify_flags = 0
        self.publish: Callable[[bytes, bytes], int] = _publish_nowhere
        self.dbs = [Keyspace(self, i) for i in range(count)]
        # (database index, argv): log a change for replay, in that database. The writer
        # replaces it once the AOF is open; while loading, nothing is logged.
        self.propagate: Callable[[int, list[bytes]], None] = _propagate_nothing
        self.loading = False  # replaying the AOF: nothing expires
        self.frozen_ms = 0  # a transaction's time (0: none, each lookup reads the clock)
        self.active_expire_enabled = True  # DEBUG SET-ACTIVE-EXPIRE
        # Keys that clients block on (BLPOP...) and that were just created: (database,
        # key) in signal order, served after the command that made them (kvred/blocking.py).
        # A list mutated in place, never rebound: the executor keeps a reference to it.
        self.ready_keys: list[tuple[Keyspace, bytes]] = []
        # statistics (INFO stats)
        self.expired_keys = 0
        self.evicted_keys = 0
        self.expired_stale_perc = 0.0
        self.expire_cycle_cpu_ms = 0.0
        self._expire_db = 0  # where the next active expire cycle starts

    def __len__(self) -> int:
        return len(self.dbs)

    def set_notify_flags(self, flags: int) -> None:
        """notify-keyspace-events changed (start-up, CONFIG SET)."""
        self.notify_flags = flags
        for db in self.dbs:
            db.notify_flags = flags

    @property
    def hits(self) -> int:
        """keyspace_hits: lookups that found their key (counted per database: cheaper)."""
        return sum(db.hits for db in self.dbs)

    @property
    def misses(self) -> int:
        return sum(db.misses for db in self.dbs)

    def reset_stats(self) -> None:
        self.expired_keys = self.evicted_keys = 0
        self.expired_stale_perc = self.expire_cycle_cpu_ms = 0.0
        for db in self.dbs:
            db.hits = db.misses = 0

    def now_ms(self) -> int:
        return self.frozen_ms or time_ms()

    def tick(self) -> None:
        """Cron: advance the LRU clock and the LFU minutes."""
        now = time_ms()
        self.lru_clock = now
        self.lfu_minutes = lfu_minutes()
        for db in self.dbs:  # each database holds it too: one attribute load per access
            db.clock = now

    def set_tracking(self, mode: int) -> None:
        """What each key's access entry holds changed (a policy set at start or at run
        time): the old entries mean something else now, so they are dropped, and keys
        count from now (Redis instead lets the old values "take some time to adjust")."""
        if mode == self.track_access:
            return
        self.track_access = mode
        for db in self.dbs:
            db.track = mode
            db.access = {}

    def flushall(self) -> None:
        for db in self.dbs:
            db.flush()

    def swapdb(self, a: int, b: int) -> None:
        """SWAPDB: the two databases' contents trade places; watchers of either are touched
        and waiters of either look again (clients stay in the database they selected, which
        now holds the other's keys: a list there serves a BLPOP, a stream gone ends an
        XREADGROUP)."""
        first, second = self.dbs[a], self.dbs[b]
        first.touch_all_watched(second)
        second.touch_all_watched(first)
        for name in Keyspace.CONTENTS:
            one, other = getattr(first, name), getattr(second, name)
            setattr(first, name, other)
            setattr(second, name, one)
        first.signal_blocked_keys()
        second.signal_blocked_keys()

    def expire_after_load(self) -> int:
        """Loading ended: delete (and propagate) what expired while the server was down."""
        now = time_ms()
        removed = 0
        for db in self.dbs:
            for key in [k for k, when in db.expires.items() if when <= now]:
                db.expire_now(key)
                removed += 1
        return removed

    def active_expire_cycle(self, budget_s: float = ACTIVE_EXPIRE_BUDGET_S) -> bool:
        """Redis's activeExpireCycle (slow): per database, walk the keys with a TTL
        ACTIVE_EXPIRE_KEYS_PER_LOOP at a time from where the last cycle stopped, and
        walk on while more than ACTIVE_EXPIRE_ACCEPTABLE_STALE percent of a walk had
        expired; stop when the budget is spent (the next cycle resumes there).
        True if it stopped for the budget: there is more to expire now."""
        if not self.active_expire_enabled or self.loading:
            return False
        started = time.perf_counter()
        deadline = started + budget_s
        now = time_ms()
        sampled = expired = 0
        count = len(self.dbs)
        for i in range(count):
            db = self.dbs[(self._expire_db + i) % count]
            if not db.expires:
                continue
            while True:
                looked, gone, ttl_sum, ttl_count = db.expire_walk(ACTIVE_EXPIRE_KEYS_PER_LOOP, now)
                sampled += looked
                expired += gone
                if ttl_count:
                    db.note_ttls(ttl_sum // ttl_count)
                if time.perf_counter() >= deadline:
                    self._expire_db = (self._expire_db + i) % count  # resume in this database
                    self._cycle_done(started, sampled, expired)
                    return True
                if looked == 0 or gone * 100 <= looked * ACTIVE_EXPIRE_ACCEPTABLE_STALE:
                    break
        self._expire_db = 0
        self._cycle_done(started, sampled, expired)
        return False

    def advance_compactions(self, budget_s: float = COMPACTION_BUDGET_S) -> None:
        """Walk on the key-order compactions under way (kvred/keyorder.py) for up to
        `budget_s`, as Redis's databasesCron rehashes for 1 ms: a walk also ends when
        nobody adds, scans or picks."""
        deadline = time.perf_counter() + budget_s
        for db in self.dbs:
            for order, live in ((db.order, db.data), (db.expire_order, db.expires)):
                while order.step(live, BLOCK):
                    if time.perf_counter() >= deadline:
                        return

    def _cycle_done(self, started: float, sampled: int, expired: int) -> None:
        self.expire_cycle_cpu_ms += (time.perf_counter() - started) * 1000
        if sampled:
            current = expired * 100.0 / sampled
            # a running average, as Redis's stat_expired_stale_perc
            self.expired_stale_perc = current * 0.05 + self.expired_stale_perc * 0.95


class Keyspace:
    """One database."""

    # what SWAPDB trades between two databases (everything but identity and watchers)
    CONTENTS = ("data", "expires", "access", "order", "expire_order", "avg_ttl")

    def __init__(self, databases: Databases, index: int) -> None:
        self.databases = databases
        self.id = index
        self.data: dict[bytes, Any] = {}
        self.expires: dict[bytes, int] = {}  # key -> absolute unix ms
        self.access: dict[bytes, int] = {}  # key -> LRU clock (ms) of its last access, or its LFU word
        self.watched: dict[bytes, list[Watcher]] = {}
        self.order = KeyOrder()  # keys of `data`
        self.expire_order = KeyOrder()  # keys of `expires`
        self._expire_cursor = 0  # where the active expire walk resumes in expire_order
        self.avg_ttl = 0  # ms, a running estimate from the active expire walks (INFO keyspace)
        self.clock = databases.lru_clock  # the LRU clock, a copy kept fresh by Databases.tick
        self.track = databases.track_access  # keep `access` up to date (read on the hot paths)
        self.hits = 0  # lookups that found their key (INFO keyspace_hits), and those that did not
        self.misses = 0
        # key -> the clients blocked on it, first come first served (kvred/blocking.py)
        self.blocking: dict[bytes, Any] = {}
        self.notify_flags = databases.notify_flags  # a copy of Databases.notify_flags

    def __len__(self) -> int:
        return len(self.data)

    # ---------------------------------------------------------------- lookups

    def lookup_read(self, key: bytes) -> Any:
        """The value of `key`, None if it does not exist (expiring it first if due);
        counts a keyspace hit or miss and the access."""
        value = self.data.get(key)
        if value is None:
            self.misses += 1
            if self.notify_flags:
                self.notify(NOTIFY_KEY_MISS, b"keymiss", key)
            return None
        if self.expires and key in self.expires and self._expire_if_due(key):
            self.misses += 1
            if self.notify_flags:
                self.notify(NOTIFY_KEY_MISS, b"keymiss", key)
            return None
        self.hits += 1
        if self.track:
            self.touch(key)
        return value

    def lookup_write(self, key: bytes) -> Any:
        """As lookup_read, for a command that is about to change the key (no hit/miss)."""
        value = self.data.get(key)
        if value is not None and self.expires and key in self.expires and self._expire_if_due(key):
            return None
        if value is not None and self.track:
            self.touch(key)
        return value

    def peek(self, key: bytes, miss_event: bool = True) -> Any:
        """As lookup_read, without touching the access time (TYPE, TTL, OBJECT, EXISTS,
        SCAN TYPE: Redis's LOOKUP_NOTOUCH, which still counts the hit or miss). A miss
        is a `keymiss` event unless `miss_event` is False (OBJECT: LOOKUP_NONOTIFY)."""
        value = self.data.get(key)
        if value is not None and self.expires and key in self.expires and self._expire_if_due(key):
            value = None
        if value is None:
            self.misses += 1
            if self.notify_flags and miss_event:
                self.notify(NOTIFY_KEY_MISS, b"keymiss", key)
        else:
            self.hits += 1
        return value

    def lookup_typed(self, key: bytes, types: tuple[type, ...], write: bool = False) -> Any:
        """lookup_read/lookup_write, checked: None, or a value of one of `types`;
        another type raises WrongType."""
        value = self.lookup_write(key) if write else self.lookup_read(key)
        if value is not None and type(value) not in types:
            raise WrongType
        return value

    def exists(self, key: bytes) -> bool:
        return self.peek(key) is not None

    def __contains__(self, key: bytes) -> bool:
        return self.peek(key) is not None

    def has_unexpired(self, key: bytes) -> bool:
        """Whether `key` exists and has not expired; an expired key is left in place (KEYS)."""
        return key in self.data and not self.is_expired(key)

    def random_key(self) -> bytes | None:
        """RANDOMKEY: a random key that has not expired (expired picks are deleted)."""
        while True:
            key = self.order.pick(self.data)
            if key is None:
                return None
            if not (self.expires and key in self.expires and self._expire_if_due(key)):
                return key

    def scan(self, cursor: int, count: int) -> tuple[int, list[bytes]]:
        """SCAN: about `count` keys from `cursor`, work proportional to `count`, expired
        ones included. The caller filters them (MATCH, TYPE), then calls drop_expired:
        Redis 7.0 deletes only the expired keys that passed its filters."""
        return self.order.scan(cursor, count, self.data)

    def drop_expired(self, keys: list[bytes]) -> list[bytes]:
        """The keys that have not expired; the expired ones are deleted."""
        if not self.expires:
            return keys
        return [key for key in keys if not (key in self.expires and self._expire_if_due(key))]

    def keys(self) -> Iterator[bytes]:
        """Every key that has not expired (KEYS). Expired keys are skipped, not deleted:
        Redis 7.0's KEYS only asks keyIsExpired, so DBSIZE still counts them after it."""
        expires = self.expires
        if not expires or self.databases.loading:
            yield from self.data
            return
        now = self.databases.now_ms()
        for key in self.data:
            when = expires.get(key)
            if when is None or when > now:
                yield key

    def idle_seconds(self, key: bytes) -> int:
        """OBJECT IDLETIME: seconds since the key was last read or written (when tracked;
        a key not seen since tracking began counts from then)."""
        clock = self.clock
        return max(clock - self.access.get(key, clock), 0) // 1000

    def touch(self, key: bytes) -> None:
        """The key was read or written: its LRU clock, or its LFU counter (Redis's
        updateLFU: decayed by the minutes it sat idle, then a logarithmic increment).
        Callers check `track` first, so nothing is paid without a policy that needs it."""
        if self.track == TRACK_LRU:
            self.access[key] = self.clock
            return
        databases = self.databases
        config = databases.config
        old = self.access.get(key)
        if old is None:  # a new key starts at LFU_INIT_VAL, not counted as an access (Redis)
            self.access[key] = databases.lfu_minutes << 8 | LFU_INIT_VAL
            return
        counter = lfu_decayed(old, databases.lfu_minutes, config.lfu_decay_time)
        self.access[key] = databases.lfu_minutes << 8 | lfu_log_incr(counter, config.lfu_log_factor)

    def lfu_counter(self, key: bytes) -> int:
        """OBJECT FREQ: the key's LFU counter after decay, without counting this as an access."""
        packed = self.access.get(key)
        if packed is None:
            return LFU_INIT_VAL
        return lfu_decayed(packed, self.databases.lfu_minutes, self.databases.config.lfu_decay_time)

    # ---------------------------------------------------------------- changes

    def set_key(self, key: bytes, value: Any, keep_ttl: bool = False) -> None:
        """Store `value` under `key` (new or not), dropping its TTL unless `keep_ttl`.
        A key whose time has passed expires first (Redis's setKey looks it up for a write),
        so that it is then new: a `new` event (Redis's dbAdd)."""
        data = self.data
        if self.expires and key in self.expires and key in data:
            self._expire_if_due(key)
        if key not in data:
            data[key] = value
            self.order.add(key, data)
            if self.blocking and key in self.blocking:
                self.databases.ready_keys.append((self, key))  # Redis's signalKeyAsReady
            if self.notify_flags:
                self.notify(NOTIFY_NEW, b"new", key)
        else:
            data[key] = value
            if self.expires and not keep_ttl:
                self.expires.pop(key, None)
            if self.blocking and key in self.blocking:
                self.databases.ready_keys.append((self, key))  # overwritten: signalDeletedKeyAsReady
        if self.track:
            self.touch(key)
        if self.watched:
            self.signal_modified(key)

    def notify(self, kind: int, event: bytes, key: bytes) -> None:
        """A keyspace event (Redis's notifyKeyspaceEvent): published on
        `__keyspace@<db>__:<key>` and `__keyevent@<db>__:<event>` as
        notify-keyspace-events asks. Callers on hot paths check `notify_flags` first."""
        flags = self.notify_flags
        if not flags & kind:
            return
        publish = self.databases.publish
        if flags & NOTIFY_KEYSPACE:
            publish(b"__keyspace@%d__:%b" % (self.id, key), event)
        if flags & NOTIFY_KEYEVENT:
            publish(b"__keyevent@%d__:%b" % (self.id, event), key)

    def replace_value(self, key: bytes, value: Any) -> None:
        """Swap the value object of an existing key (a string made mutable): no signal,
        the command that changes it calls modified()."""
        self.data[key] = value

    def modified(self, key: bytes) -> None:
        """A value was changed in place (APPEND, SETRANGE, and the other types' commands)."""
        if self.watched:
            self.signal_modified(key)

    def modified_or_emptied(self, key: bytes, value: Sized) -> None:
        """Elements were removed from an aggregate in place: delete its key if it is now
        empty (Redis keeps no empty list, hash, set or sorted set), else signal the change."""
        if len(value):
            self.modified(key)
        else:
            self.delete_emptied(key)

    def delete_emptied(self, key: bytes) -> None:
        """Delete an aggregate its command emptied: the generic `del` event follows the
        command's own, as in Redis."""
        self.delete(key)
        if self.notify_flags:
            self.notify(NOTIFY_GENERIC, b"del", key)

    def delete(self, key: bytes) -> bool:
        """DEL one key; True if it existed (an expired key did not: it is expired)."""
        data = self.data
        if key not in data:
            return False
        if self.expires and key in self.expires and self._expire_if_due(key):
            return False
        self._remove(key)
        if self.watched:
            self.signal_modified(key)
        return True

    def evict(self, key: bytes) -> None:
        """Evict a key for maxmemory (Redis's performEvictions): propagated as DEL, watchers
        touched, the `evicted` event, counted in evicted_keys."""
        self._remove(key)
        databases = self.databases
        databases.evicted_keys += 1
        databases.propagate(self.id, [b"DEL", key])
        if self.watched:
            self.signal_modified(key)
        if self.notify_flags:
            self.notify(NOTIFY_EVICTED, b"evicted", key)

    def _remove(self, key: bytes) -> None:
        del self.data[key]
        self.access.pop(key, None)
        if self.expires:
            self.expires.pop(key, None)
        if self.blocking and key in self.blocking:
            # Redis's signalDeletedKeyAsReady: a consumer waiting in XREADGROUP learns that
            # its stream is gone (-UNBLOCKED); other waiters keep waiting
            self.databases.ready_keys.append((self, key))

    def signal_blocked_keys(self) -> None:
        """Every key clients wait on here is looked at again after the command: its
        contents were replaced wholesale (FLUSHDB, SWAPDB)."""
        self.databases.ready_keys.extend((self, key) for key in self.blocking)

    def flush(self) -> None:
        """FLUSHDB: watchers of keys that existed are touched, waiters of keys that existed
        look again (Redis's scanDatabaseForDeletedKeys)."""
        if self.watched:
            self.touch_all_watched(None)
        if self.blocking:
            self.databases.ready_keys.extend((self, key) for key in self.blocking if key in self.data)
        self.data = {}
        self.expires = {}
        self.access = {}
        self.order.clear()
        self.expire_order.clear()
        self._expire_cursor = 0
        self.avg_ttl = 0

    # ---------------------------------------------------------------- TTLs

    def get_expire(self, key: bytes) -> int | None:
        """The key's absolute expiry time in ms, or None (no TTL). The key must exist."""
        return self.expires.get(key) if self.expires else None

    def set_expire(self, key: bytes, when_ms: int) -> None:
        """Give an existing key a TTL (absolute unix ms)."""
        expires = self.expires
        if key not in expires:
            expires[key] = when_ms
            self.expire_order.add(key, expires)
        else:
            expires[key] = when_ms
        if self.watched:
            self.signal_modified(key)

    def persist(self, key: bytes) -> bool:
        """Drop the key's TTL; True if it had one."""
        if self.expires.pop(key, None) is None:
            return False
        if self.watched:
            self.signal_modified(key)
        return True

    def is_expired(self, key: bytes) -> bool:
        """Whether the key exists but its time has passed (never while loading)."""
        when = self.expires.get(key) if self.expires else None
        return when is not None and not self.databases.loading and when <= self.databases.now_ms()

    def _expire_if_due(self, key: bytes) -> bool:
        """Lazy expiry: True (and the key deleted and propagated) if its time has passed."""
        if not self.is_expired(key):
            return False
        self.expire_now(key)
        return True

    def expire_now(self, key: bytes) -> None:
        """Delete an expired key: propagated as DEL, counted, watchers touched, and the
        `expired` event (lazy and active expiry alike, as Redis)."""
        self._remove(key)
        databases = self.databases
        databases.expired_keys += 1
        databases.propagate(self.id, [b"DEL", key])
        if self.watched:
            self.signal_modified(key)
        if self.notify_flags:
            self.notify(NOTIFY_EXPIRED, b"expired", key)

    def expire_walk(self, count: int, now: int) -> tuple[int, int, int, int]:
        """One step of the active expire cycle: the next `count` entries of the keys with
        a TTL. Returns (entries looked at, keys expired, sum and count of the remaining
        TTLs seen, for avg_ttl)."""
        expires = self.expires
        cursor, found = self.expire_order.scan(self._expire_cursor, count, expires)
        self._expire_cursor = cursor
        gone = ttl_sum = ttl_count = 0
        for key in found:
            when = expires.get(key)
            if when is None:
                continue
            if when <= now:
                self.expire_now(key)
                gone += 1
            else:
                ttl_sum += when - now
                ttl_count += 1
        return max(len(found), 1 if cursor else 0), gone, ttl_sum, ttl_count

    def note_ttls(self, average_ms: int) -> None:
        # Redis's running estimate: avg = avg/50*49 + sample/50
        self.avg_ttl = average_ms if not self.avg_ttl else (self.avg_ttl // 50) * 49 + average_ms // 50

    # ---------------------------------------------------------------- WATCH

    def watch(self, client: Watcher, key: bytes) -> None:
        for db, watched_key, _expired in client.watched:
            if db is self and watched_key == key:
                return
        self.watched.setdefault(key, []).append(client)
        # A key already expired (but not yet deleted) when watched: its deletion by expiry
        # is no change (Redis's watchedKey.expired).
        client.watched.append((self, key, key in self.data and self.is_expired(key)))

    def signal_modified(self, key: bytes) -> None:
        """signalModifiedKey: every client that WATCHes `key` here fails its EXEC. A key
        that was already expired when watched and is now gone is no change."""
        clients = self.watched.get(key)
        if not clients:
            return
        for client in clients:
            if not client.dirty_cas and not self._expired_when_watched_and_gone(client, key):
                client.dirty_cas = True

    def _expired_when_watched_and_gone(self, client: Watcher, key: bytes) -> bool:
        for i, (db, watched_key, expired) in enumerate(client.watched):
            if db is self and watched_key == key:
                if expired and key not in self.data:
                    client.watched[i] = (db, watched_key, False)  # deleted: no longer "expired"
                    return True
                return False
        return False

    def touch_all_watched(self, other: Keyspace | None) -> None:
        """FLUSHDB, and SWAPDB with `other` the database whose contents replace these
        (Redis's touchAllWatchedKeysInDb): watchers of keys that exist here or there are
        touched. Except where nothing changed logically, as for one key: a key expired when
        watched that is now gone, or is replaced by an expired key; and a missing key
        replaced by an expired one, which then counts as expired when watched."""
        seen: set[int] = set()
        for clients in self.watched.values():
            for client in clients:
                if id(client) not in seen:
                    seen.add(id(client))
                    self._touch_watched_by(client, other)

    def _touch_watched_by(self, client: Watcher, other: Keyspace | None) -> None:
        """touch_all_watched for one client: one pass over its watched list."""
        for i, (db, key, expired) in enumerate(client.watched):
            if db is not self:
                continue
            here = key in self.data
            there = other is not None and key in other.data
            if not (here or there):
                continue
            replaced_by_expired = there and other is not None and other.is_expired(key)
            if expired:
                if not there:
                    client.watched[i] = (self, key, False)  # gone: no longer "expired"
                    continue
                if replaced_by_expired:
                    continue  # expired still
            elif not here and replaced_by_expired:
                client.watched[i] = (self, key, True)
                continue
            client.dirty_cas = True

    def unwatch(self, client: Watcher, key: bytes) -> None:
        clients = self.watched.get(key)
        if clients is not None:
            if client in clients:
                clients.remove(client)
            if not clients:
                del self.watched[key]


def unwatch_all(client: Watcher) -> None:
    """UNWATCH, EXEC, DISCARD, RESET, disconnect: forget every watched key."""
    for db, key, _expired in client.watched:
        db.unwatch(client, key)
    client.watched = []
    client.dirty_cas = False


def watched_key_expired(client: Watcher) -> bool:
    """Redis's isWatchedKeyExpired: at EXEC, a watched key (not expired when watched)
    whose time has passed since counts as changed, even if nothing deleted it yet."""
    return any(not expired and db.is_expired(key) for db, key, expired in client.watched)


__all__ += ["unwatch_all", "watched_key_expired"]
