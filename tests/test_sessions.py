"""Browser sessions of the drill desk and of ``bcdrill serve``: one token's holder opening the
access link over and over ends only that token's older sessions, never everyone else's."""

from __future__ import annotations

from drills.desk.participants import Holder
from drills.desk.tokens import Sessions
from engine.web import MAX_SESSIONS_PER_TOKEN
from reports.portal.sessions import ServeSessions

FLOOD = MAX_SESSIONS_PER_TOKEN + 8


def test_a_flood_of_portal_sessions_from_one_token_ends_only_its_own_older_ones() -> None:
    sessions = ServeSessions()
    other = sessions.create("hash-of-client-b")
    flood = [sessions.create("hash-of-client-a") for _ in range(FLOOD)]
    assert sessions.token_hash(other) == "hash-of-client-b"
    assert [sessions.token_hash(s) for s in flood[:8]] == [None] * 8
    assert all(sessions.token_hash(s) == "hash-of-client-a" for s in flood[8:])


def test_a_flood_of_desk_sessions_from_one_token_ends_only_its_own_older_ones() -> None:
    sessions = Sessions()
    bob = Holder("Acme", "Bob", "client", "player")
    alex = Holder("Acme", "Alex", "msp", "player")
    other, _ = sessions.create(bob, "digest-of-bob")
    flood = [sessions.create(alex, "digest-of-alex")[0] for _ in range(FLOOD)]
    kept = sessions.get(other)
    assert kept is not None and kept.holder == bob
    assert [sessions.get(s) for s in flood[:8]] == [None] * 8
    assert all(sessions.get(s) is not None for s in flood[8:])
