"""kvred: a Redis-compatible key-value server.

Layout:
    supervisor.py   forks the writer, then N workers; restarts workers; graceful stop
    worker.py       uvloop acceptor: SO_REUSEPORT listener, batches to the writer, back-pressure
    connection.py   one client of a worker: parsing, reply order, AUTH, HELLO, MULTI queueing
    writer.py       the single owner of the keyspace and the AOF: loop passes, group commit,
                    deferred replies, cron (expiry, rewrite, memory)
    execute.py      running commands (call, EXEC, WATCH check) with the typed handler context
    keyspace.py     the databases: keys, TTLs and expiry, WATCH bookkeeping, access times
    keyorder.py     key order for SCAN, random picks and expiry walks in bounded time
    clients.py      what the writer keeps per client (database, watched keys, deferred replies)
    aof.py          append-only file: buffered appends, fsync policies, write errors
    rewrite.py      BGREWRITEAOF: forked snapshot, tail, atomic switch
    replay.py       loading an AOF at start-up, `kvred check-aof`
    resp.py         sans-IO RESP request parser and reply encoders
    fastparse.py    the workers' hiredis-backed parser (same results as resp.py)
    ipc.py          worker <-> writer batch format and framing (msgpack)
    acl.py          ACL users, rules, permission checks, ACL LOG, the aclfile (sans-IO)
    acl_keys.py     the keys (read/write) and channels a command names, from its key specs
    acl_table.py    Redis 7.0's ACL categories and key specs of every command (data)
    glob.py         Redis's glob matching (KEYS, SCAN MATCH, CONFIG GET) in polynomial time
    memory.py       giving freed memory back to the OS after bursts
    commands/       the command table (name -> handler, arity, flags), one module per family
    config.py       flags, config file, environment, logging
    cli.py          `kvred` entry point
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
