"""Job functions for the rq test in test_programs_pubsub.py.

rq stores a job as the dotted name of its function ("rqjobs.add"), and the worker
imports it; tests/ is on sys.path when pytest runs, so the in-process SimpleWorker
finds this module.
"""

from __future__ import annotations


def add(a: int, b: int) -> int:
    return a + b


def fail(message: str) -> None:
    raise ValueError(message)
