"""kvred: a Redis-compatible key-value server.

Layout:
    supervisor.py   forks the writer, then N workers; restarts workers; graceful stop
    worker.py       uvloop acceptor: SO_REUSEPORT listener, RESP parsing, batches to the writer
    writer.py       single-threaded owner of the keyspace and the AOF; group commit
    aof.py          append-only file: buffered appends, fsync policies
    resp.py         sans-IO RESP request parser and reply encoders
    ipc.py          worker <-> writer batch format and framing (msgpack)
    commands/       the command table (name -> handler, arity, flags) by family
    config.py       flags, environment, logging
    cli.py          `kvred` entry point
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
