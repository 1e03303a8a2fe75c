"""The `bit` library Redis loads into Lua (LuaBitOp 1.0): 32-bit operations on Lua numbers.

Arguments are normalised as LuaBitOp does (rounded to the nearest integer, modulo 2^32)
and results are signed 32-bit numbers. A non-number argument is Lua's argument error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import ScriptError

__all__ = ["functions"]


def _arg(value: Any, index: int, name: str) -> int:
    number = value
    if type(value) is bytes:
        try:
            number = float(value)
        except ValueError:
            number = None
    if type(number) not in (int, float) or number != number:
        got = "no value" if value is None and index < 0 else ("nil" if value is None else "string" if type(value) is bytes else "boolean" if type(value) is bool else "table")
        raise ScriptError(b"bad argument #%d to '%s' (number expected, got %s)" % (abs(index), name.encode(), got.encode()), "runtime")
    return round(number) & 0xFFFFFFFF  # type: ignore[arg-type]  # round half even, as the 2^52+2^51 trick


def _signed(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _args(name: str, args: tuple[Any, ...], minimum: int = 1) -> list[int]:
    if len(args) < minimum:
        _arg(None, -(len(args) + 1), name)
    return [_arg(a, i + 1, name) for i, a in enumerate(args)]


def _fold(name: str, op: Callable[[int, int], int]) -> Callable[..., int]:
    def fold(*args: Any) -> int:
        values = _args(name, args)
        result = values[0]
        for v in values[1:]:
            result = op(result, v)
        return _signed(result)

    return fold


def _shift(name: str, op: Callable[[int, int], int]) -> Callable[..., int]:
    def shift(*args: Any) -> int:
        value, count = _args(name, args[:2] if len(args) >= 2 else args, 2)
        return _signed(op(value, count & 31))

    return shift


def _tobit(*args: Any) -> int:
    return _signed(_args("tobit", args[:1])[0])


def _bnot(*args: Any) -> int:
    return _signed(~_args("bnot", args[:1])[0])


def _bswap(*args: Any) -> int:
    return _signed(int.from_bytes(_args("bswap", args[:1])[0].to_bytes(4, "little"), "big"))


def _tohex(*args: Any) -> bytes:
    value = _args("tohex", args[:1])[0]
    digits = 8 if len(args) < 2 or args[1] is None else _signed(_arg(args[1], 2, "tohex"))
    upper = digits < 0
    digits = min(abs(digits), 8)
    text = b"%0*x" % (digits, value & ((1 << (4 * digits)) - 1)) if digits else b""
    return text.upper() if upper else text


def _rol(value: int, n: int) -> int:
    return (value << n) | (value >> (32 - n)) if n else value


def _ror(value: int, n: int) -> int:
    return (value >> n) | (value << (32 - n)) if n else value


def _arshift(value: int, n: int) -> int:
    return _signed(value) >> n


def functions() -> dict[bytes, Callable[..., Any]]:
    return {
        b"tobit": _tobit,
        b"bnot": _bnot,
        b"band": _fold("band", lambda a, b: a & b),
        b"bor": _fold("bor", lambda a, b: a | b),
        b"bxor": _fold("bxor", lambda a, b: a ^ b),
        b"lshift": _shift("lshift", lambda v, n: v << n),
        b"rshift": _shift("rshift", lambda v, n: v >> n),
        b"arshift": _shift("arshift", _arshift),
        b"rol": _shift("rol", _rol),
        b"ror": _shift("ror", _ror),
        b"bswap": _bswap,
        b"tohex": _tohex,
    }
