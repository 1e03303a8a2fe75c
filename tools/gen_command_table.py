"""Generate kvred/commands/table.json from a running redis-server 7.0.15.

The table holds, for every command (and subcommand) kvred registers, what Redis 7.0.15
answers about it in COMMAND INFO and COMMAND DOCS: these are interface facts kvred's
replies must repeat byte for byte, so they are taken from the server, not typed in.

    python tools/gen_command_table.py --port 6379   # a redis-server 7.0.15 on 127.0.0.1

The replies are read in RESP3 (it keeps sets, maps and status strings apart) and stored
as a JSON tree kvred/commands/cmdtable.py encodes again in either protocol:

    integer -> int        bulk string -> str        null -> null
    array   -> list       map -> object (key order kept)
    status  -> {"+": s}   set -> {"~": [...]}

A container's subcommands that kvred does not implement are left out of its entry, so
that COMMAND lists only what kvred can run. A command kvred registers that Redis 7.0
does not have would be an error here: none exists, and the test suite checks it.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "kvred" / "commands" / "table.json"


class _Conn:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def call(self, *args: str) -> Any:
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("redis-server closed the connection")
        self.buf += chunk

    def _reply(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:].decode()
        if kind == b"+":
            return {"+": rest}
        if kind == b"-":
            raise RuntimeError(rest)
        if kind == b":":
            return int(rest)
        if kind == b"_":
            return None
        if kind == b"$":
            size = int(rest)
            while len(self.buf) < size + 2:
                self._fill()
            data, self.buf = self.buf[:size], self.buf[size + 2 :]
            return data.decode()
        if kind in (b"*", b"~"):
            items = [self._reply() for _ in range(int(rest))]
            return items if kind == b"*" else {"~": items}
        if kind == b"%":
            result: dict[str, Any] = {}
            for _ in range(int(rest)):
                key = self._reply()
                assert isinstance(key, str) and key not in ("+", "~") and key not in result, key
                result[key] = self._reply()
            return result
        raise ValueError(f"unexpected reply {line!r}")


def _statuses(node: Any) -> list[str]:
    assert isinstance(node, dict) and "~" in node, node
    items = node["~"]
    assert all(isinstance(item, dict) and "+" in item for item in items), items
    return [item["+"] for item in items]


def _bulks(node: Any) -> list[str]:
    assert isinstance(node, dict) and "~" in node, node
    assert all(isinstance(item, str) for item in node["~"]), node
    return list(node["~"])


def info_entry(info: list[Any], keep: set[str] | None) -> dict[str, Any]:
    """One COMMAND INFO entry as a table row (subcommands limited to `keep`)."""
    name, arity, flags, first, last, step, acl, tips, key_specs, subs = info
    assert isinstance(key_specs, dict) and "~" in key_specs and isinstance(key_specs, dict), info
    # a plain command answers an empty set for its subcommands, a container an array
    subs = subs if isinstance(subs, list) else subs["~"]
    row: dict[str, Any] = {
        "arity": arity,
        "flags": _statuses(flags),
        "first_key": first,
        "last_key": last,
        "step": step,
        "acl_categories": _statuses(acl),
        "tips": _bulks(tips),
        "key_specs": key_specs["~"],
    }
    subcommands = {}
    for sub in subs:
        subname = sub[0].split("|", 1)[1]
        if keep is not None and subname in keep:
            subcommands[subname] = info_entry(sub, None)
    row["subcommands"] = dict(sorted(subcommands.items()))
    return row


def docs_entry(docs: dict[str, Any], keep: set[str] | None) -> dict[str, Any]:
    """One COMMAND DOCS entry (subcommands limited to `keep`)."""
    docs = dict(docs)
    if "subcommands" in docs:
        kept = {k: v for k, v in docs["subcommands"].items() if keep is not None and k.split("|", 1)[1] in keep}
        docs["subcommands"] = dict(sorted(kept.items()))
    return docs


def generate(port: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from kvred.commands import COMMANDS

    registered: dict[str, set[str]] = {}
    for cmd in COMMANDS.values():
        registered[cmd.name] = {sub.decode() for sub in cmd.subcommands}
    conn = _Conn(port)
    version = conn.call("INFO", "server")  # before HELLO 3: RESP2 answers a bulk string
    conn.call("HELLO", "3")
    commands: dict[str, Any] = {}
    missing = []
    for name in sorted(registered):
        info = conn.call("COMMAND", "INFO", name)[0]
        if info is None:
            missing.append(name)
            continue
        docs = conn.call("COMMAND", "DOCS", name)
        row = info_entry(info, registered[name])
        absent = registered[name] - set(row["subcommands"])
        assert not absent, f"{name}: subcommands Redis does not have: {absent}"
        row["docs"] = docs_entry(docs[name], registered[name])
        commands[name] = row
    if missing:
        raise SystemExit(f"kvred registers commands redis-server does not have: {missing}")
    server = dict(line.split(":", 1) for line in version.splitlines() if ":" in line)
    return {"redis_version": server["redis_version"], "commands": commands}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--output", type=Path, default=TABLE)
    args = parser.parse_args()
    table = generate(args.port)
    if table["redis_version"] != "7.0.15":
        raise SystemExit(f"expected redis-server 7.0.15, got {table['redis_version']}")
    args.output.write_text(json.dumps(table, indent=1, sort_keys=False) + "\n")
    print(f"{args.output}: {len(table['commands'])} commands from redis-server {table['redis_version']}")


if __name__ == "__main__":
    main()
