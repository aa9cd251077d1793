"""Golden comparison: every deterministic figure the labs show, recomputed and compared with tests/golden/figures.json.

The stored JSON is the contract (see tests/golden/make_golden.py): a refactor of slimcore re-points the functions in
make_golden.py at the new API; it does not regenerate the JSON. The figures come from the very function that wrote the
JSON (make_golden.compute), so the two cannot drift apart.

Tolerance: EXACT equality for every value, floats included. Checked before choosing: the whole set computed twice in
one process and in separate processes (each with make_golden.THREADS = 1 torch thread) gave bit-identical floats,
training runs included (gradual pruning, distillation, the Deep Compression pipeline). A refactor that moves code
without changing arithmetic keeps every bit, so any difference, even in the last bit, means an operation changed
(another summation order, another dtype, another batch split) and deserves a look. If a deliberate, harmless
reordering ever needs room, loosen FLOAT_TOLERANCE below (math.isclose with rel_tol=1e-9, abs_tol=1e-12) in the same
commit that explains why; ints and strings stay exact either way. Run under the same PyTorch build: another version or
CPU (other SIMD kernels) may legitimately move the last bits.
"""
from __future__ import annotations

import math

import pytest

from tests.golden import make_golden

pytestmark = pytest.mark.slow

# Twelve significant digits: the labs show at most six, and the refactor to one code path per technique moved a few
# figures in their last bit only (Spearman's rho from scipy.stats instead of our own ranks: ~2e-16).
FLOAT_TOLERANCE: dict | None = dict(rel_tol=1e-12, abs_tol=1e-15)
SHOWN = 30                            # differing keys listed in a failure message


def same(old, new) -> bool:
    """Exact for ints, strings, bools and None; floats exact unless FLOAT_TOLERANCE is set; lists element by element."""
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(same(a, b) for a, b in zip(old, new))
    if type(old) is float and type(new) is float and FLOAT_TOLERANCE is not None:
        return math.isclose(old, new, **FLOAT_TOLERANCE)
    return type(old) is type(new) and old == new


def differences(stored: dict, now: dict) -> list[str]:
    out = []
    for key in sorted(set(stored) | set(now)):
        if key not in now:
            out.append(f"{key}: stored {stored[key]!r}, now MISSING (no longer computed)")
        elif key not in stored:
            out.append(f"{key}: NEW (not in the stored figures), now {now[key]!r}")
        elif not same(stored[key], now[key]):
            out.append(f"{key}: stored {stored[key]!r}, now {now[key]!r}")
    return out


def test_every_figure_is_unchanged():
    stored = make_golden.load()
    now = make_golden.compute()
    diff = differences(stored, now)
    if diff:  # pytest.fail rather than assert: the message alone, without pytest repeating the whole list
        pytest.fail(f"{len(diff)} of {len(stored)} golden figures differ (first {min(len(diff), SHOWN)} below). The "
                    "JSON is the contract: fix the code, or, only for a named bug fix, regenerate it with "
                    "`python -m tests.golden.make_golden` and name the changed keys in the commit.\n"
                    + "\n".join(diff[:SHOWN]), pytrace=False)
