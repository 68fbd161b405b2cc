"""Commitments bind a drill moment; run names say nothing about it."""

from __future__ import annotations

import hashlib
import inspect
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drills.programme.commitment import Commitment, canonical_moment, commit, neutral_run_name, verify
from engine.errors import InputError

MOMENT = datetime(2027, 2, 15, 9, 30, tzinfo=UTC)

moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


def test_digest_is_sha256_of_the_documented_canonical_string() -> None:
    nonce = "ab" * 32
    text = f"bcdrill-drill-commitment/v1\n2027-02-15T09:30:00.000000Z\n{nonce}"
    assert commit(MOMENT, nonce).digest == hashlib.sha256(text.encode()).hexdigest()
    assert canonical_moment(MOMENT) == "2027-02-15T09:30:00.000000Z"


@settings(max_examples=200, deadline=None, database=None)
@given(moments)
def test_commitment_verifies_and_a_tampered_time_or_nonce_fails(moment: datetime) -> None:
    sealed = commit(moment)
    assert re.fullmatch(r"[0-9a-f]{64}", sealed.digest)
    assert re.fullmatch(r"[0-9a-f]{64}", sealed.nonce)
    assert verify(sealed.digest, moment, sealed.nonce)
    assert not verify(sealed.digest, moment + timedelta(minutes=1), sealed.nonce)
    assert not verify(sealed.digest, moment - timedelta(microseconds=1), sealed.nonce)
    flipped = ("1" if sealed.nonce[0] == "0" else "0") + sealed.nonce[1:]
    assert not verify(sealed.digest, moment, flipped)
    assert not verify(sealed.digest[::-1], moment, sealed.nonce)


def test_the_same_instant_in_another_zone_verifies() -> None:
    sealed = commit(MOMENT)
    local = MOMENT.astimezone(ZoneInfo("Europe/Berlin"))
    assert verify(sealed.digest, local, sealed.nonce)
    assert verify(sealed.digest.upper(), MOMENT, sealed.nonce)


def test_each_commitment_gets_a_fresh_nonce() -> None:
    first, second = commit(MOMENT), commit(MOMENT)
    assert first.nonce != second.nonce
    assert first.digest != second.digest


def test_malformed_inputs_are_refused_or_false() -> None:
    with pytest.raises(InputError, match="needs a time zone"):
        commit(datetime(2027, 2, 15, 9, 30))
    with pytest.raises(InputError, match="64 lower-case hex"):
        commit(MOMENT, "short")
    sealed = commit(MOMENT)
    assert not verify(sealed.digest, MOMENT, "zz" * 32)
    assert not verify("é" * 64, MOMENT, sealed.nonce)
    assert not verify(sealed.digest[:-1], MOMENT, sealed.nonce)


def test_repr_hides_the_nonce() -> None:
    sealed = commit(MOMENT)
    assert sealed.nonce not in repr(sealed)
    assert sealed.digest in repr(sealed)
    assert isinstance(sealed, Commitment)


def test_run_names_are_neutral_and_random() -> None:
    names = {neutral_run_name() for _ in range(200)}
    assert len(names) == 200
    for name in names:
        assert re.fullmatch(r"drill-[a-z]+-[a-z]+-[0-9a-f]{6}", name)
    # Nothing time-like can go in: the only parameter is the number of words.
    assert list(inspect.signature(neutral_run_name).parameters) == ["words"]
    assert re.fullmatch(r"drill(-[a-z]+){3}-[0-9a-f]{6}", neutral_run_name(3))
