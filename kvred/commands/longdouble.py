"""Exact emulation of the x87 `long double` arithmetic INCRBYFLOAT uses in Redis.

Redis parses with strtold, adds two long doubles and prints with "%.17Lf"
before trimming zeros. Python floats are doubles, so `10.5 + 0.1` would print
`10.59999999999999964` where Redis prints `10.6`. Rationals rounded to a 64-bit
significand reproduce Redis exactly; INCRBYFLOAT is rare enough that the cost
of `Fraction` does not matter.
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

__all__ = ["parse_long_double", "add_long_double", "format_long_double"]

_SIGNIFICAND_BITS = 64
_MAX_EXP = 16384  # long double overflows at 2**16384
_MIN_EXP = -16445  # smallest subnormal is 2**-16445
MAX_LONG_DOUBLE_CHARS = 5 * 1024  # Redis refuses longer float strings

_DECIMAL = re.compile(rb"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?")
_HEX = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?\d+))?")
_INF = re.compile(rb"([+-]?)(?:inf|infinity)", re.IGNORECASE)


class _Infinite(Exception):
    pass


def _round(value: Fraction) -> Fraction:
    """Round to the nearest long double (ties to even); raise _Infinite on overflow."""
    if value == 0:
        return value
    sign = -1 if value < 0 else 1
    mag = abs(value)
    exp = mag.numerator.bit_length() - mag.denominator.bit_length()
    if Fraction(2) ** exp > mag:
        exp -= 1
    shift = max(exp - (_SIGNIFICAND_BITS - 1), _MIN_EXP)
    scaled = mag / Fraction(2) ** shift
    rounded = round(scaled) * Fraction(2) ** shift
    if rounded >= Fraction(2) ** _MAX_EXP:
        raise _Infinite
    return sign * rounded


def _checked(value: Fraction, was_zero: bool) -> Fraction | None:
    try:
        rounded = _round(value)
    except _Infinite:
        return None  # ERANGE overflow: strtold gives HUGE_VAL and Redis refuses it
    if rounded == 0 and not was_zero:
        return None  # ERANGE underflow to zero: refused too
    return rounded


_MAX_EXPONENT_DIGITS = 6  # past 10**6 every exponent is out of a long double's range


def _exponent(text: bytes | None) -> int | None:
    """The exponent's value, or None if it has so many digits it is out of any range
    (int() of 4,400 digits raises under Python's integer-string limit)."""
    if not text:
        return 0
    digits = text.lstrip(b"+-").lstrip(b"0")
    if len(digits) > _MAX_EXPONENT_DIGITS:
        return None
    return int(text)


def parse_long_double(text: bytes) -> Fraction | float | None:
    """strtold as Redis's string2ld uses it: the value, +-inf as a float, or None."""
    if not text or len(text) >= MAX_LONG_DOUBLE_CHARS or text[:1].isspace():
        return None
    m = _DECIMAL.fullmatch(text)
    if m and (m.group(2) or m.group(3)):
        sign, whole, frac, exp = m.groups()
        digits = (whole + (frac or b"")).lstrip(b"0")
        if not digits:
            return Fraction(0)
        exponent = _exponent(exp)
        if exponent is None:
            return None  # |exponent| far past the range: overflow or underflow, refused
        power = exponent - len(frac or b"")
        # Decide overflow/underflow before building a huge integer.
        magnitude = power + len(digits)
        if magnitude > 4940:
            return None
        if magnitude < -4960:
            return None
        value = Fraction(Decimal(digits.decode())) * Fraction(10) ** power  # Decimal: no 4300-digit cap
        return _checked(-value if sign == b"-" else value, False)
    m = _HEX.fullmatch(text)
    if m and (m.group(2) or m.group(3)):
        sign, whole, frac, exp = m.groups()
        digits = (whole + (frac or b"")) or b"0"
        exponent = _exponent(exp)
        if exponent is None:
            return None if digits.strip(b"0") else Fraction(0)
        power = exponent - 4 * len(frac or b"")
        if abs(power) > 20000:
            return None
        value = Fraction(int(digits, 16)) * Fraction(2) ** power
        return _checked(-value if sign == b"-" else value, value == 0)
    m = _INF.fullmatch(text)
    if m:
        return float("-inf") if m.group(1) == b"-" else float("inf")
    return None  # includes nan, which Redis refuses


def add_long_double(a: Fraction | float, b: Fraction | float) -> Fraction | None:
    """a + b rounded to a long double; None when the result is NaN or infinite."""
    if isinstance(a, float) or isinstance(b, float):
        return None  # any infinity in the sum gives inf or nan
    try:
        return _round(a + b)
    except _Infinite:
        return None


def format_long_double(value: Fraction) -> bytes:
    """Redis's ld2string(LD_STR_HUMAN): "%.17Lf", trailing zeros and dot removed."""
    scaled = value * 10**17
    units = round(scaled)  # printf rounds the exact binary value half to even
    sign = "-" if units < 0 else ""
    # Decimal prints ints of any size (str() refuses ints over 4300 digits; 1e4932 has 4933).
    digits = f"{Decimal(abs(units)):f}".rjust(18, "0")
    text = f"{sign}{digits[:-17]}.{digits[-17:]}".rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return text.encode()
