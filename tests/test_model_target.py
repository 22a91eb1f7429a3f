"""`Target` as a value: equality, hash (it keys the retry budgets), repr, replace."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import model
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


@given(st.text(max_size=8), st.text(max_size=8))
def test_a_known_target_is_the_target_of_its_names(bucket: str, region: str) -> None:
    """`known_target` hands back a shared instance: a frozen value, equal to one built anew in
    everything a caller can see (the budgets' key, repr, replace, immutability)."""
    known = model.known_target(bucket, region)
    built = Target(bucket, region)
    assert type(known) is Target
    assert known == built and hash(known) == hash(built) and repr(known) == repr(built)
    assert model.known_target(bucket, region) is known
    assert dataclasses.replace(known, region="x") == Target(bucket, "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        known.bucket = "other"  # type: ignore[misc]
    assert model.known_target.cache_info().currsize <= model.TARGETS_REMEMBERED
