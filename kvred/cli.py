"""The `kvred` command: start the server (default) or run a subcommand."""

from __future__ import annotations

import sys

from .config import parse_args
from .replay import check_aof_main
from .supervisor import run

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["check-aof"]:
        return check_aof_main(args[1:])
    config = parse_args(args)
    return run(config)
