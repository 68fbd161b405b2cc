"""Calendars: the client's shows the window only; the controllers' shows the moments."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from icalendar import Calendar

from drills.programme.calendar import WINDOW_SUMMARY, client_calendar, controller_calendar
from drills.programme.drill_plans import Blackout, BusinessHours, DateRange, DayRange, DrillPlan
from drills.programme.schedule import ScheduledDrill, pick_times

STAMP = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def office_plan() -> DrillPlan:
    """The example plan from the brief: Q1 2027, Berlin office hours, two blackouts."""
    weekday = (DayRange.parse("09:30-17:00"),)
    return DrillPlan(
        client="Demo Bakery Ltd",
        environment=Path("/srv/env/lab.yaml"),
        playbooks=(Path("/srv/pb/storefront-down.yaml"),),
        window=DateRange(date(2027, 1, 1), date(2027, 3, 31)),
        time_zone="Europe/Berlin",
        business_hours=BusinessHours((weekday,) * 5 + ((), ())),
        blackouts=(
            Blackout(DateRange(date(2027, 1, 6), date(2027, 1, 6))),
            Blackout(DateRange(date(2027, 3, 25), date(2027, 3, 31)), "month-end close"),
        ),
        min_spacing_s=30 * 86400,
        quota=2,
        drill_length_s=3600,
    )


def moment_strings(drill: ScheduledDrill) -> list[str]:
    """Ways a moment could be written into a calendar (UTC and local, iCal and ISO)."""
    texts = []
    for moment in (drill.start, drill.local_start()):
        texts += [
            moment.strftime("%Y%m%dT%H%M"),
            moment.strftime("%Y-%m-%dT%H:%M"),
            moment.strftime("%Y-%m-%d %H:%M"),
            moment.strftime("%Y%m%d"),
            moment.strftime("%Y-%m-%d"),
        ]
    return texts


@pytest.mark.parametrize("seed", range(25))
def test_client_calendar_never_contains_a_chosen_moment(seed: int) -> None:
    plan = office_plan()
    drills = pick_times([plan], random.Random(seed))
    # Unfold the 75-octet lines first, so a string split across a fold is still found.
    text = client_calendar(plan, stamp=STAMP).decode().replace("\r\n ", "")
    window_edges = {"20270101", "2027-01-01", "20270401", "2027-03-31", "2027-03-25", "2027-01-06"}
    for drill in drills:
        for needle in moment_strings(drill):
            if needle not in window_edges:
                assert needle not in text, needle


def test_client_calendar_is_one_all_day_event_over_the_window() -> None:
    plan = office_plan()
    parsed = Calendar.from_ical(client_calendar(plan, stamp=STAMP))
    (event,) = parsed.walk("VEVENT")
    assert str(event["summary"]) == WINDOW_SUMMARY
    assert event.decoded("dtstart") == date(2027, 1, 1)
    assert event.decoded("dtend") == date(2027, 4, 1)  # exclusive end: through 31 March
    description = str(event["description"])
    assert "Europe/Berlin" in description
    assert "mon 09:30-17:00" in description and "sat closed" in description
    assert "2027-03-25 to 2027-03-31 (month-end close)" in description
    assert "2 unannounced drills" in description
    assert not parsed.walk("VTIMEZONE")


def test_client_calendar_is_reproducible() -> None:
    plan = office_plan()
    assert client_calendar(plan, stamp=STAMP) == client_calendar(plan, stamp=STAMP)


def test_controller_calendar_has_exact_moments_and_timezones() -> None:
    plan = office_plan()
    drills = pick_times([plan], random.Random(3))
    parsed = Calendar.from_ical(controller_calendar(drills, stamp=STAMP))
    events = parsed.walk("VEVENT")
    assert [e.decoded("dtstart") for e in events] == [d.local_start() for d in drills]
    assert [e.decoded("dtend") - e.decoded("dtstart") for e in events] == [d.end - d.start for d in drills]
    assert all(str(e["class"]) == "CONFIDENTIAL" for e in events)
    assert [str(tz["tzid"]) for tz in parsed.walk("VTIMEZONE")] == ["Europe/Berlin"]
    assert parsed.get_missing_tzids() == set()
    raw = controller_calendar(drills, stamp=STAMP).decode()
    assert drills[0].local_start().strftime("DTSTART;TZID=Europe/Berlin:%Y%m%dT%H%M%S") in raw


def test_empty_controller_calendar_parses() -> None:
    parsed = Calendar.from_ical(controller_calendar((), stamp=STAMP))
    assert parsed.walk("VEVENT") == []


def test_controller_table_keeps_whole_dates_at_80_columns() -> None:
    """`bcdrill calendar` in an 80-column terminal folds names, never the dates."""
    from dataclasses import replace

    from rich.console import Console

    from drills.programme.commands import _calendar_table
    from drills.programme.secret_schedule import RunSettings, new_stored_drill

    plan = replace(office_plan(), source=Path("/srv/plans/demo-bakery-ltd.yaml"))
    drills = pick_times([plan], random.Random(3))
    pool, settings = "site-demo-bakery-ltd-with-a-long-pool-name", RunSettings("/srv/runs")
    stored = tuple(new_stored_drill(d, plan, f"key-{i}", pool, settings) for i, d in enumerate(drills))
    console = Console(width=80, record=True, highlight=False)
    console.print(_calendar_table(stored))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for drill in drills:
        assert f"{drill.local_start():%Y-%m-%d %H:%M %Z}" in text
        assert f"{drill.start.astimezone(UTC):%Y-%m-%d %H:%M}" in text
    assert "…" not in text
