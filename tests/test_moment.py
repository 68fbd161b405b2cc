"""A scheduled drill readied early holds until its secret moment (pure logic, fake clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.clock import FakeClock
from engine.errors import InputError, PreflightError
from engine.record.journal import Journal, read_journal
from engine.record.runstore import request_abort
from engine.run.preflight import HoldAborted, await_moment, parse_moment

START = datetime(2027, 3, 4, 10, 13, 0, tzinfo=UTC)


def _journal(tmp_path: Path, clock: FakeClock) -> Journal:
    return Journal(tmp_path / "journal.jsonl", clock)


def test_the_hold_ends_on_the_moment_and_is_journaled(tmp_path: Path) -> None:
    clock = FakeClock(START)
    journal = _journal(tmp_path, clock)
    moment = START + timedelta(seconds=90.5)
    late = await_moment(moment, clock, journal, tmp_path)
    journal.close()
    assert late == pytest.approx(0.0, abs=1e-6) and clock.utc() == moment
    awaited, reached = read_journal(tmp_path / "journal.jsonl").records
    assert awaited["type"] == "moment.awaited" and awaited["data"]["wait_s"] == 90.5
    assert awaited["data"]["moment"] == "2027-03-04T10:14:30.500Z"
    assert reached["type"] == "moment.reached" and reached["data"]["late_s"] == 0.0
    assert reached["t"] == pytest.approx(90.5)


def test_a_drill_readied_after_its_moment_goes_at_once_and_says_how_late(tmp_path: Path) -> None:
    clock = FakeClock(START)
    journal = _journal(tmp_path, clock)
    late = await_moment(START - timedelta(seconds=3.25), clock, journal, tmp_path)
    journal.close()
    assert late == pytest.approx(3.25) and clock.now() == 0.0
    awaited, reached = read_journal(tmp_path / "journal.jsonl").records
    assert awaited["data"]["wait_s"] == 0.0 and reached["data"]["late_s"] == 3.25


def test_an_abort_request_ends_the_hold(tmp_path: Path) -> None:
    clock = FakeClock(START)
    journal = _journal(tmp_path, clock)
    request_abort(tmp_path, "client asked to stop", "carla")
    with pytest.raises(HoldAborted, match="aborted by carla before the drill's moment") as caught:
        await_moment(START + timedelta(minutes=2), clock, journal, tmp_path)
    journal.close()
    assert caught.value.by == "carla"
    types = [r["type"] for r in read_journal(tmp_path / "journal.jsonl").records]
    assert types == ["moment.awaited"]


def test_a_steady_state_lost_while_holding_fails_the_preflight_at_the_moment(tmp_path: Path) -> None:
    clock = FakeClock(START)
    journal = _journal(tmp_path, clock)
    with pytest.raises(PreflightError, match=r"stopped holding .*probe 'app' is down"):
        await_moment(START + timedelta(seconds=5), clock, journal, tmp_path, lambda: "probe 'app' is down")
    journal.close()


def test_moments_need_a_time_zone() -> None:
    assert parse_moment("2027-03-04T10:15:00Z") == datetime(2027, 3, 4, 10, 15, tzinfo=UTC)
    with pytest.raises(InputError, match="needs a time zone"):
        parse_moment("2027-03-04T10:15:00")
    with pytest.raises(InputError, match="not an ISO 8601"):
        parse_moment("tomorrow")
