"""The runtime settings table: what CONFIG GET shows and CONFIG SET / CONFIG REWRITE change
(Redis's config.c), sans-IO.

Every parameter Redis 7.0 lists in `CONFIG GET *` is here, in one of three kinds:

- kvred's settings: a flag of kvred/config.py (`--name`, a config-file line `name value`).
  The flag's parser is the one validation of a value, at start-up and at runtime, with
  Redis's error texts; CONFIG GET shows the running value. Those in `RUNTIME` can be
  changed by CONFIG SET, the others are start-up only.
- Redis parameters kvred has no use for (replication, cluster, TLS, RDB, threads...):
  CONFIG GET shows Redis's default, which is what kvred behaves as (no replicas, no
  cluster, ...), so that clients reading them at start-up work; CONFIG SET refuses them,
  except `save ""` (no RDB snapshots: what kvred does).
- aliases (Redis 7.0's older names): the same value under both names.

A setting someone adds as a flag of kvred/config.py becomes a kvred setting here by its
name, with no second list to keep.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .config import BadValue, Config, apply_output_limits, build_parser, flag_actions
from .notify import format_flags

__all__ = ["Setting", "SettingsTable", "SettingError", "config_set", "ERR_NO_CONFIG_FILE", "rewrite_config_text"]

ERR_NO_CONFIG_FILE = b"-ERR The server is running without a config file\r\n"

# Settings kvred can change while it runs; the others of its flags are start-up only.
RUNTIME = frozenset({
    "appendfsync", "appendonly", "auto-aof-rewrite-percentage", "auto-aof-rewrite-min-size",
    "requirepass", "protected-mode", "maxclients", "timeout", "proto-max-bulk-len",
    "client-query-buffer-limit", "client-output-buffer-limit", "loglevel", "notify-keyspace-events",
    "busy-reply-threshold", "track-key-access",
    "hash-max-listpack-entries", "hash-max-listpack-value", "set-max-intset-entries",
    "zset-max-listpack-entries", "zset-max-listpack-value", "list-max-listpack-size",
    "list-compress-depth", "hll-sparse-max-bytes", "stream-node-max-entries", "stream-node-max-bytes",
    "maxmemory", "maxmemory-policy", "maxmemory-samples", "maxmemory-eviction-tenacity",
    "lfu-log-factor", "lfu-decay-time", "slowlog-log-slower-than", "slowlog-max-len",
    "latency-monitor-threshold", "latency-tracking", "latency-tracking-info-percentiles",
    "acllog-max-len", "hz", "active-expire-effort", "tracking-table-max-keys",
})
# flag spellings that are not a CONFIG parameter of their own
_NOT_PARAMETERS = frozenset({"fsync"})

# Redis 7.0's older names: CONFIG GET lists both, CONFIG SET takes either
ALIASES = {
    "hash-max-ziplist-entries": "hash-max-listpack-entries",
    "hash-max-ziplist-value": "hash-max-listpack-value",
    "zset-max-ziplist-entries": "zset-max-listpack-entries",
    "zset-max-ziplist-value": "zset-max-listpack-value",
    "list-max-ziplist-size": "list-max-listpack-size",
    "lua-time-limit": "busy-reply-threshold",
    "slave-announce-ip": "replica-announce-ip",
    "slave-announce-port": "replica-announce-port",
    "slave-ignore-maxmemory": "replica-ignore-maxmemory",
    "slave-lazy-flush": "replica-lazy-flush",
    "slave-priority": "replica-priority",
    "slave-read-only": "replica-read-only",
    "slave-serve-stale-data": "replica-serve-stale-data",
    "slaveof": "replicaof",
    "min-slaves-max-lag": "min-replicas-max-lag",
    "min-slaves-to-write": "min-replicas-to-write",
    "repl-ping-slave-period": "repl-ping-replica-period",
    "cluster-slave-no-failover": "cluster-replica-no-failover",
    "cluster-slave-validity-factor": "cluster-replica-validity-factor",
}

# Redis 7.0.15's defaults of the parameters kvred has no flag for (CONFIG GET * of a
# redis-server started with no options, minus the instance's own port and dir).
REDIS_DEFAULTS = {
    "acl-pubsub-default": "resetchannels", "aclfile": "", "acllog-max-len": "128",
    "active-defrag-cycle-max": "25", "active-defrag-cycle-min": "1",
    "active-defrag-ignore-bytes": "104857600", "active-defrag-max-scan-fields": "1000",
    "active-defrag-threshold-lower": "10", "active-defrag-threshold-upper": "100",
    "active-expire-effort": "1", "activedefrag": "no", "activerehashing": "yes", "always-show-logo": "no",
    "aof-disable-auto-gc": "no", "aof-load-truncated": "yes", "aof-rewrite-incremental-fsync": "yes",
    "aof-timestamp-enabled": "no", "aof-use-rdb-preamble": "no", "aof_rewrite_cpulist": "",
    "appenddirname": "", "bgsave_cpulist": "", "bind-source-addr": "", "bio_cpulist": "",
    "cluster-allow-pubsubshard-when-down": "yes", "cluster-allow-reads-when-down": "no",
    "cluster-allow-replica-migration": "yes", "cluster-announce-bus-port": "0",
    "cluster-announce-hostname": "", "cluster-announce-ip": "", "cluster-announce-port": "0",
    "cluster-announce-tls-port": "0", "cluster-config-file": "nodes.conf", "cluster-enabled": "no",
    "cluster-link-sendbuf-limit": "0", "cluster-migration-barrier": "1", "cluster-node-timeout": "15000",
    "cluster-port": "0", "cluster-preferred-endpoint-type": "ip", "cluster-replica-no-failover": "no",
    "cluster-replica-validity-factor": "10", "cluster-require-full-coverage": "yes",
    "crash-log-enabled": "yes", "crash-memcheck-enabled": "yes", "daemonize": "no", "dbfilename": "dump.rdb",
    "disable-thp": "yes", "dynamic-hz": "yes", "enable-module-command": "no", "enable-protected-configs": "no",
    "hz": "10", "ignore-warnings": "", "io-threads": "1", "io-threads-do-reads": "no",
    "jemalloc-bg-thread": "yes", "latency-monitor-threshold": "0", "latency-tracking": "yes",
    "latency-tracking-info-percentiles": "50 99 99.9", "lazyfree-lazy-eviction": "no",
    "lazyfree-lazy-expire": "no", "lazyfree-lazy-server-del": "no", "lazyfree-lazy-user-del": "no",
    "lazyfree-lazy-user-flush": "no", "lfu-decay-time": "1", "lfu-log-factor": "10", "logfile": "",
    "masterauth": "", "masteruser": "", "maxmemory": "0", "maxmemory-clients": "0",
    "maxmemory-eviction-tenacity": "10", "maxmemory-policy": "noeviction", "maxmemory-samples": "5",
    "min-replicas-max-lag": "10", "min-replicas-to-write": "0", "no-appendfsync-on-rewrite": "no",
    "oom-score-adj": "no", "oom-score-adj-values": "0 200 800", "pidfile": "",
    "proc-title-template": "{title} {listen-addr} {server-mode}", "propagation-error-behavior": "ignore",
    "rdb-del-sync-files": "no", "rdb-save-incremental-fsync": "yes", "rdbchecksum": "yes",
    "rdbcompression": "yes", "repl-backlog-size": "1048576", "repl-backlog-ttl": "3600",
    "repl-disable-tcp-nodelay": "no", "repl-diskless-load": "disabled", "repl-diskless-sync": "yes",
    "repl-diskless-sync-delay": "5", "repl-diskless-sync-max-replicas": "0", "repl-ping-replica-period": "10",
    "repl-timeout": "60", "replica-announce-ip": "", "replica-announce-port": "0", "replica-announced": "yes",
    "replica-ignore-disk-write-errors": "no", "replica-ignore-maxmemory": "yes", "replica-lazy-flush": "no",
    "replica-priority": "100", "replica-read-only": "yes", "replica-serve-stale-data": "yes", "replicaof": "",
    "sanitize-dump-payload": "no", "save": "", "server_cpulist": "", "set-proc-title": "no",
    "shutdown-on-sigint": "default", "shutdown-on-sigterm": "default", "shutdown-timeout": "10",
    "slowlog-log-slower-than": "10000", "slowlog-max-len": "128", "socket-mark-id": "0",
    "stop-writes-on-bgsave-error": "yes", "stream-node-max-bytes": "4096", "stream-node-max-entries": "100",
    "supervised": "no", "syslog-enabled": "no", "syslog-facility": "local0", "syslog-ident": "redis",
    "tcp-backlog": "511", "tcp-keepalive": "300", "tls-auth-clients": "yes", "tls-ca-cert-dir": "",
    "tls-ca-cert-file": "", "tls-cert-file": "", "tls-ciphers": "", "tls-ciphersuites": "",
    "tls-client-cert-file": "", "tls-client-key-file": "", "tls-client-key-file-pass": "",
    "tls-cluster": "no", "tls-dh-params-file": "", "tls-key-file": "", "tls-key-file-pass": "",
    "tls-port": "0", "tls-prefer-server-ciphers": "no", "tls-protocols": "", "tls-replication": "no",
    "tls-session-cache-size": "20480", "tls-session-cache-timeout": "300", "tls-session-caching": "yes",
    "tracking-table-max-keys": "1000000", "unixsocket": "", "unixsocketperm": "0",
}
# Redis's immutable parameters (changed only at start-up, in Redis too)
REDIS_IMMUTABLE = frozenset({
    "daemonize", "databases", "io-threads", "io-threads-do-reads", "always-show-logo", "supervised",
    "syslog-enabled", "syslog-ident", "syslog-facility", "logfile", "pidfile", "unixsocket", "unixsocketperm",
    "tcp-backlog", "appendfilename", "appenddirname", "cluster-enabled", "cluster-config-file", "cluster-port",
    "aclfile", "disable-thp", "enable-protected-configs", "enable-debug-command", "enable-module-command",
    "set-proc-title", "aof-use-rdb-preamble", "workers",
})
# how kvred shows a value whose flag parser returns something else than the text
_SHOW: dict[str, Callable[[Config], str]] = {
    "bind": lambda c: " ".join(c.bind),
    "dir": lambda c: os.path.abspath(c.dir),
    "appendfsync": lambda c: c.fsync,
    "requirepass": lambda c: c.requirepass or "",
    "client-output-buffer-limit": lambda c: "normal {0} {0} 0 slave 268435456 67108864 60 pubsub {1} {2} {3}".format(
        c.client_output_buffer_limit, *c.pubsub_output_buffer_limit),
    "notify-keyspace-events": lambda c: format_flags(c.notify_keyspace_events),
    "latency-tracking-info-percentiles": lambda c: " ".join(
        f"{p:f}".rstrip("0").rstrip(".") for p in c.latency_tracking_info_percentiles),
}


@dataclass
class Setting:
    name: str
    attr: str | None  # the Config attribute; None: one of Redis's kvred does not use
    action: argparse.Action | None  # kvred's flag (its parser validates values)
    runtime: bool  # CONFIG SET may change it
    immutable_in_redis: bool

    def show(self, config: Config) -> str:
        if self.attr is None:
            return REDIS_DEFAULTS[self.name]
        custom = _SHOW.get(self.name)
        if custom is not None:
            return custom(config)
        return format_value(getattr(config, self.attr))

    def parse(self, text: str) -> Any:
        """The value, as the flag's parser reads it (BadValue(reason) if it refuses)."""
        assert self.action is not None
        kind = self.action.type
        if not callable(kind):
            return text
        try:
            return kind(text)
        except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
            if isinstance(exc, BadValue):
                raise
            raise BadValue(text, "argument couldn't be parsed") from None


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return str(value)


class SettingsTable:
    """Name -> Setting for every CONFIG parameter, built from kvred's flags."""

    def __init__(self, parser: argparse.ArgumentParser | None = None) -> None:
        actions = flag_actions(parser or build_parser())
        self.settings: dict[str, Setting] = {}
        for name in sorted(set(actions) | set(REDIS_DEFAULTS)):
            if name in _NOT_PARAMETERS:
                continue
            action = actions.get(name)
            attr = action.dest if action is not None else None
            canonical = ALIASES.get(name, name)  # a flag's second spelling (lua-time-limit)
            self.settings[name] = Setting(name, attr, action, action is not None and canonical in RUNTIME,
                                          canonical in REDIS_IMMUTABLE)
        for alias, name in ALIASES.items():
            if name in self.settings:
                self.settings.setdefault(alias, self.settings[name])

    def get(self, name: str) -> Setting | None:
        return self.settings.get(name.lower())

    def runtime_values(self, config: Config) -> dict[str, Any]:
        """The Config attributes CONFIG SET can change, as they are now (for a new worker)."""
        attrs = {attr for setting in self.settings.values() if setting.runtime for attr in _attrs(setting)}
        return {attr: getattr(config, attr) for attr in sorted(attrs)}

    def values(self, config: Config) -> dict[str, str]:
        """Every parameter with its value, aliases under their own names."""
        return {name: setting.show(config) for name, setting in self.settings.items()}


# ---------------------------------------------------------------- CONFIG SET


class SettingError(Exception):
    """A change the server could not make (the reason goes in CONFIG SET's error)."""


def _failed(name: bytes, reason: str) -> bytes:
    return (b"-ERR CONFIG SET failed (possibly related to argument '" + name + b"') - "
            + reason.encode("utf-8", "backslashreplace") + b"\r\n")


def config_set(table: SettingsTable, config: Config, pairs: list[tuple[bytes, bytes]],
               changed: Callable[[Setting], None]) -> tuple[bytes, dict[str, Any]]:
    """CONFIG SET name value [name value ...], all or nothing, in Redis's order: every name
    is checked (unknown, immutable, named twice), then every value is parsed, then all are
    set and `changed(setting)` applies each (an AOF to open, a log level...). If one of
    those fails (SettingError), every value goes back and is applied again. Returns the
    reply and the Config attributes that changed (for the workers)."""
    chosen: list[tuple[Setting, bytes, bytes]] = []
    seen: set[str] = set()
    for name, value in pairs:
        setting = table.get(name.decode("latin-1"))
        if setting is None:
            return (b"-ERR Unknown option or number of arguments for CONFIG SET - '"
                    + name.replace(b"\r", b" ").replace(b"\n", b" ") + b"'\r\n"), {}
        if setting.immutable_in_redis:
            return _failed(name, "can't set immutable config"), {}
        if setting.name in seen:  # by name: an alias and its name may both be set, the last wins
            return _failed(name, "duplicate parameter"), {}
        seen.add(setting.name)
        if not setting.runtime:
            if setting.name == "save":
                if value == b"":
                    continue  # no RDB snapshots: already what kvred does
                return _failed(name, 'kvred has no RDB snapshots: only save "" is accepted'), {}
            if setting.attr is None:
                return _failed(name, "kvred does not implement this parameter"), {}
            return _failed(name, "kvred can only set it at start-up (flag or config file)"), {}
        chosen.append((setting, name, value))
    parsed: list[tuple[Setting, bytes, Any]] = []
    for setting, name, value in chosen:
        try:
            parsed.append((setting, name, setting.parse(value.decode("utf-8", "surrogateescape"))))
        except BadValue as exc:
            return _failed(name, exc.reason), {}
    old = {attr: getattr(config, attr) for setting, _name, _value in parsed for attr in _attrs(setting)}
    for setting, _name, value in parsed:
        _assign(config, setting, value)
    done: list[Setting] = []
    for setting, name, _value in parsed:
        try:
            changed(setting)
            done.append(setting)
        except SettingError as exc:
            for attr, value in old.items():
                setattr(config, attr, value)
            for applied in [*done, setting]:
                try:
                    changed(applied)
                except SettingError:
                    pass  # the old value was in force a moment ago
            return _failed(name, str(exc)), {}
    return b"+OK\r\n", {attr: getattr(config, attr) for attr in old if getattr(config, attr) != old[attr]}


def _attrs(setting: Setting) -> list[str]:
    assert setting.attr is not None
    if setting.name == "client-output-buffer-limit":
        return ["client_output_buffer_limit", "pubsub_output_buffer_limit"]
    return [setting.attr]


def _assign(config: Config, setting: Setting, value: Any) -> None:
    if setting.name == "client-output-buffer-limit":
        apply_output_limits(config, value)
    elif setting.name == "requirepass":
        config.requirepass = value or None  # an empty password means none, as in Redis
    else:
        assert setting.attr is not None
        setattr(config, setting.attr, value)


# ---------------------------------------------------------------- CONFIG REWRITE

REWRITE_SIGNATURE = "# Generated by CONFIG REWRITE"


def rewrite_config_text(old: str, current: dict[str, str], defaults: dict[str, str],
                        multi_arg: Iterable[str] = ()) -> str:
    """Redis's rewriteConfig: the file's lines stay where they are (comments too); the
    first line of each setting gets its running value, later lines of the same setting
    go; settings that differ from their default and had no line are appended after
    REWRITE_SIGNATURE. Values are quoted when they need it."""
    multi = set(multi_arg)
    seen: set[str] = set()
    lines: list[str] = []
    for raw in old.split("\n"):
        line = raw.strip()
        if not line or line.startswith("#"):
            lines.append(raw)
            continue
        words = line.split()
        name = words[0].lower().replace("_", "-")
        name = ALIASES.get(name, name)
        if name not in current:
            lines.append(raw)  # not ours to rewrite (the flag file's check refused it already)
            continue
        if name in seen:
            continue
        seen.add(name)
        lines.append(_line(name, current[name], name in multi))
    while lines and not lines[-1].strip():
        lines.pop()
    added = [_line(name, value, name in multi) for name, value in current.items()
             if name not in seen and value != defaults.get(name)]
    if added:
        if REWRITE_SIGNATURE not in (line.strip() for line in lines):
            lines += ["", REWRITE_SIGNATURE]
        lines += added
    return "\n".join(lines) + "\n"


def _line(name: str, value: str, multi: bool) -> str:
    if multi and value:
        return f"{name} {value}"
    return f"{name} {_quote(value)}"


def _quote(value: str) -> str:
    """Redis's sdscatrepr when a value needs it (empty, spaces, quotes, control bytes)."""
    if value and all(33 <= ord(c) < 127 and c not in "\"'\\" for c in value):
        return value
    out = []
    for c in value:
        if c in "\"\\":
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif 32 <= ord(c) < 127:
            out.append(c)
        else:
            out.append(f"\\x{ord(c):02x}")
    return '"' + "".join(out) + '"'
