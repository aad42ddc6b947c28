"""``same(a, b)``: two served results equal, floats to a tolerance (a batch's other inputs move them slightly).

Used by the serve tests and ``benchmarks/serve_load.py`` to check answers under load against offline ``predict``.
"""

from __future__ import annotations

import math

__all__ = ["same"]


def same(a, b, tol: float = 1e-3) -> bool:
    """``a == b`` where floats (probabilities, scores) need only be equal to ``tol`` (``math.isclose``, relative
    and absolute), through dicts (the same keys) and lists (the same length) at any depth."""
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=tol, abs_tol=tol)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, tol) for x, y in zip(a, b))
    return a == b
