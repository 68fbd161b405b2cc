"""Participant tokens: issued once, stored as hashes only (0600), revocable and rotatable."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from drills.desk.participants import ParticipantStore, client_slug
from engine.errors import InputError
from engine.model.types import Participant
from engine.record.tokens import token_hash
from tests.conftest import run_cli

CLIENT = "Demo Bakery Ltd"
PEOPLE = (
    Participant("Alex Moreau", "msp", "on-call engineer"),
    Participant("Priya Shah", "client", "shop manager"),
)


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCDRILL_HOME", str(tmp_path / "home"))


def test_issue_stores_only_hashes_in_a_private_file() -> None:
    store = ParticipantStore(CLIENT)
    cards = store.issue(PEOPLE, "https://desk.example:8765/")
    assert store.path.name == "demo-bakery-ltd.json"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    text = store.path.read_text()
    for card in cards:
        assert len(card.token) >= 43  # 32 random bytes, url-safe base64
        assert card.token not in text and token_hash(card.token) in text
        assert card.link == f"https://desk.example:8765/p/{card.token}"
        holder = store.lookup(card.token)
        assert holder is not None and holder.name == card.participant.name
        assert holder.party == card.participant.party
    assert len({c.token for c in cards}) == 2
    assert store.lookup(cards[0].token[:-1] + "x") is None


def test_issue_skips_holders_unless_reissue() -> None:
    store = ParticipantStore(CLIENT)
    first = store.issue(PEOPLE, "http://d")
    assert store.issue(PEOPLE, "http://d") == []
    again = store.issue(PEOPLE, "http://d", reissue=True)
    assert all(store.lookup(c.token) is None for c in first)
    assert all(store.lookup(c.token) is not None for c in again)


def test_revoke_and_rotate_are_immediate_even_for_a_loaded_store() -> None:
    live = ParticipantStore(CLIENT)  # what a running desk holds
    cards = {c.participant.name: c for c in ParticipantStore(CLIENT).issue(PEOPLE, "http://d")}
    assert live.lookup(cards["Alex Moreau"].token) is not None
    ParticipantStore(CLIENT).revoke("Alex Moreau")
    assert live.lookup(cards["Alex Moreau"].token) is None
    assert live.lookup(cards["Priya Shah"].token) is not None
    new = ParticipantStore(CLIENT).rotate(PEOPLE[1], "http://d")
    assert live.lookup(cards["Priya Shah"].token) is None
    assert live.lookup(new.token) is not None
    with pytest.raises(InputError, match="Alex Moreau"):
        ParticipantStore(CLIENT).revoke("Alex Moreau")


def test_tokens_do_not_cross_clients() -> None:
    (card,) = ParticipantStore("Other Co").issue([PEOPLE[0]], "http://d")
    assert ParticipantStore(CLIENT).lookup(card.token) is None
    assert client_slug("Other Co") != client_slug(CLIENT)


def test_cli_cards_revoke_rotate(lab_env: Path, tmp_path: Path) -> None:
    # the lab environment lists the four demo participants
    issued = run_cli("participants", "cards", str(lab_env), "--base-url", "http://127.0.0.1:9999", check=True)
    links = [line.strip() for line in issued.stdout.splitlines() if "/p/" in line]
    assert len(links) == 4 and all(link.startswith("http://127.0.0.1:9999/p/") for link in links)
    assert "Priya Shah (client, shop manager)" in issued.stdout
    again = run_cli("participants", "cards", str(lab_env), check=True)
    assert "/p/" not in again.stdout and "already holds a link" in again.stderr
    run_cli("participants", "revoke", str(lab_env), "Priya Shah", check=True)
    listing = run_cli("participants", "list", str(lab_env), check=True).stdout
    assert "revoked" in listing and not any(link.rsplit("/", 1)[1] in listing for link in links)
    rotated = run_cli("participants", "rotate", str(lab_env), "Priya Shah", check=True)
    assert rotated.stdout.count("/p/") == 1
    unknown = run_cli("participants", "rotate", str(lab_env), "Nobody")
    assert unknown.returncode == 2 and "Priya Shah" in unknown.stderr
