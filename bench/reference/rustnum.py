"""Rust's floating-point semantics in Python, for the same-work reference: single precision
(``x as f32``), ``f64::min``/``max``/``clamp``/``round``/``total_cmp`` and ``Display``."""

from __future__ import annotations

import math
import struct
from array import array
from decimal import Decimal

NAN = math.nan
INF = math.inf
I64_MIN = -(2**63)

#: One single-precision cell: ``F32_CELL[0] = x; x = F32_CELL[0]`` is ``x as f32`` inline
#: (the hot paths do that rather than call ``f32``).
F32_CELL = array("f", [0.0])


def f32(x: float) -> float:
    """``x as f32`` read back as a double (overflow gives an infinity, as in Rust)."""
    F32_CELL[0] = x
    return F32_CELL[0]


def fmin(a: float, b: float) -> float:
    """Rust's ``f64::min``: a NaN operand is ignored."""
    if a != a:
        return b
    if b != b:
        return a
    return a if a <= b else b


def fmax(a: float, b: float) -> float:
    """Rust's ``f64::max``: a NaN operand is ignored."""
    if a != a:
        return b
    if b != b:
        return a
    return a if a >= b else b


def fclamp(x: float, lo: float, hi: float) -> float:
    """Rust's ``f64::clamp`` (a NaN stays NaN)."""
    if x < lo:
        x = lo
    if x > hi:
        x = hi
    return x


def round_half_away(x: float) -> float:
    """Rust's ``f64::round``: halves round away from zero."""
    r = math.floor(abs(x))
    if abs(x) - r >= 0.5:
        r += 1
    return math.copysign(r, x)


def total_order(x: float) -> int:
    """A key sorting doubles as ``f64::total_cmp`` does."""
    (bits,) = struct.unpack("<q", struct.pack("<d", x))
    return bits ^ ((bits >> 63) & 0x7FFF_FFFF_FFFF_FFFF)


def rust_f64_str(d: float) -> str:
    """A double as Rust's ``Display`` writes it: shortest round-trip digits, never an exponent."""
    if d != d:
        return "NaN"
    if d in (INF, -INF):
        return "inf" if d > 0 else "-inf"
    r = repr(d)
    if "e" in r or "E" in r:
        r = format(Decimal(r), "f")
    if r.endswith(".0"):
        r = r[:-2]
    return r
