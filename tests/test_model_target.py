"""`Target` as a value: equality, hash (it keys the retry budgets), repr, replace."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from gateway.model import Target


@given(st.text(max_size=8), st.text(max_size=8), st.text(max_size=8), st.text(max_size=8))
def test_equal_targets_hash_alike_and_key_the_same_entry(a: str, b: str, c: str, d: str) -> None:
    first, second = Target(a, b), Target(c, d)
    assert (first == second) == ((a, b) == (c, d))
    assert hash(first) == hash((a, b))  # what a frozen dataclass hashes: its fields' tuple
    budgets = {first: 1}
    assert budgets.get(Target(a, b)) == 1
    assert repr(first) == f"Target(bucket={a!r}, region={b!r})"
    assert dataclasses.replace(first, region=d) == Target(a, d)
    assert dataclasses.astuple(first) == (a, b)
