"""Redis's LFU counter (evict.c: LFUGetTimeInMinutes, LFULogIncr, LFUDecrAndReturn), sans-IO.

A key's access frequency is one word: the minutes (mod 2^16) of its last decrement
in the high bits, an 8-bit logarithmic counter in the low 8. The counter starts at
LFU_INIT_VAL so that a new key is not the first to go; an access increments it with
probability 1 / ((counter - LFU_INIT_VAL) * lfu-log-factor + 1), so that 255 takes about a
million accesses at the default factor 10; every lfu-decay-time minutes idle take one off.
"""

from __future__ import annotations

import random
import time

__all__ = ["LFU_INIT_VAL", "LFU_COUNTER_MAX", "lfu_minutes", "lfu_decayed", "lfu_log_incr"]

LFU_INIT_VAL = 5
LFU_COUNTER_MAX = 255
LFU_MINUTES_MASK = 0xFFFF  # Redis keeps 16 bits of minutes


def lfu_minutes() -> int:
    """Redis's LFUGetTimeInMinutes: unix minutes, 16 bits."""
    return (int(time.time()) // 60) & LFU_MINUTES_MASK


def lfu_decayed(word: int, now_minutes: int, decay_time: int) -> int:
    """The counter of `word` less one per `decay_time` minutes elapsed since its time
    (LFUDecrAndReturn); decay_time 0: no decay."""
    counter = word & 0xFF
    if not decay_time:
        return counter
    then = word >> 8
    elapsed = now_minutes - then if now_minutes >= then else LFU_MINUTES_MASK - then + now_minutes
    periods = elapsed // decay_time
    return 0 if periods > counter else counter - periods


def lfu_log_incr(counter: int, log_factor: int, rand: float | None = None) -> int:
    """LFULogIncr: the counter, perhaps one higher; `rand` in [0, 1) (a random draw by default)."""
    if counter >= LFU_COUNTER_MAX:
        return LFU_COUNTER_MAX
    base = max(counter - LFU_INIT_VAL, 0)
    if (random.random() if rand is None else rand) < 1.0 / (base * log_factor + 1):
        return counter + 1
    return counter
