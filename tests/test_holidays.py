"""Holiday calendars in drill plans (``holidays: CN``) from the ``holidays`` package."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import yaml

from drills.programme.calendar import window_description
from drills.programme.drill_plans import (
    Blackout,
    BusinessHours,
    DateRange,
    DayRange,
    DrillPlan,
    load_plan,
)
from drills.programme.holiday_calendar import HolidayCalendar
from drills.programme.schedule import allowed_minutes
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "playbooks" / "plans" / "demo-bakery-2027.yaml"
OFFICE = (DayRange.parse("09:00-18:00"),)
CLOSED: tuple[DayRange, ...] = ()


def shanghai_plan(**overrides: object) -> DrillPlan:
    """Mon–Fri 09:00–18:00 in Shanghai, early 2025, with China's public holidays."""
    fields: dict[str, object] = {
        "client": "Shanghai Trading Co",
        "environment": Path("/srv/env.yaml"),
        "playbooks": (Path("/srv/pb.yaml"),),
        "window": DateRange(date(2025, 1, 20), date(2025, 2, 16)),
        "time_zone": "Asia/Shanghai",
        "business_hours": BusinessHours((OFFICE,) * 5 + (CLOSED, CLOSED)),
        "drill_length_s": 3600,
        "holidays": HolidayCalendar("CN"),
    }
    fields.update(overrides)
    return DrillPlan(**fields)  # type: ignore[arg-type]


def open_days(plan: DrillPlan) -> set[date]:
    """Local dates on which some drill may start."""
    zone = plan.zone
    days = set()
    for start, end in allowed_minutes(plan).runs:
        for minute in (start, end - 1):
            days.add(datetime.fromtimestamp(minute * 60, UTC).astimezone(zone).date())
    return days


def test_spring_festival_is_closed_and_substitute_workdays_open() -> None:
    days = open_days(shanghai_plan())
    for holiday in (date(2025, 1, 28), date(2025, 1, 29), date(2025, 2, 3), date(2025, 2, 4)):
        assert holiday not in days, f"{holiday} is a public holiday (or a day off in exchange)"
    # Sunday 26 January and Saturday 8 February 2025 were worked in exchange (调休)
    assert date(2025, 1, 26) in days and date(2025, 2, 8) in days
    assert date(2025, 1, 27) in days and date(2025, 2, 5) in days  # ordinary workdays
    assert date(2025, 2, 9) not in days  # an ordinary Sunday


def test_without_a_calendar_the_same_weeks_follow_weekdays_only() -> None:
    days = open_days(shanghai_plan(holidays=None))
    assert date(2025, 1, 29) in days and date(2025, 1, 26) not in days


def test_a_substitute_workday_has_the_chosen_weekday_hours() -> None:
    short_friday = BusinessHours((OFFICE,) * 4 + ((DayRange.parse("09:00-12:00"),), CLOSED, CLOSED))
    plan = shanghai_plan(business_hours=short_friday, holidays=HolidayCalendar("CN", workday_hours="fri"))
    sunday = date(2025, 1, 26)
    assert plan.hours_on(sunday) == (DayRange.parse("09:00-12:00"),)
    assert shanghai_plan().hours_on(sunday) == OFFICE


def test_hand_typed_blackouts_still_apply_with_a_calendar() -> None:
    blackout = Blackout(DateRange(date(2025, 1, 26), date(2025, 1, 27)), "stock-taking")
    days = open_days(shanghai_plan(blackouts=(blackout,)))
    assert date(2025, 1, 26) not in days and date(2025, 1, 27) not in days
    assert date(2025, 2, 8) in days


def _plan_file(tmp_path: Path, holidays: object) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    data.pop("incident_check")
    data["environment"] = str(EXAMPLE.parent / data["environment"])
    data["playbooks"] = [str((EXAMPLE.parent / p).resolve()) for p in data["playbooks"]]
    data["holidays"] = holidays
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def test_a_plan_file_reads_the_calendar_and_tells_the_client(tmp_path: Path) -> None:
    plan = load_plan(_plan_file(tmp_path, {"country": "DE", "subdivision": "BY"}))
    assert plan.holidays == HolidayCalendar("DE", "BY")
    assert plan.blacked_out(date(2027, 1, 6))  # Epiphany in Bavaria
    assert "public holidays (DE-BY)" in window_description(plan)
    assert load_plan(_plan_file(tmp_path, "CN")).holidays == HolidayCalendar("CN")


def test_an_unknown_country_or_subdivision_is_a_located_error(tmp_path: Path) -> None:
    path = _plan_file(tmp_path, "XX")
    result = run_cli("validate", str(path))
    assert result.returncode == 2
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if t.startswith("holidays:"))
    assert f"{path}:{line}:" in result.stderr and "'XX' is not a country code" in result.stderr
    path = _plan_file(tmp_path, {"country": "DE", "subdivision": "ZZ"})
    result = run_cli("validate", str(path))
    assert result.returncode == 2 and "holidays.country: 'ZZ' is not a subdivision of DE" in result.stderr


def test_substitute_workdays_are_known_only_for_announced_years() -> None:
    calendar = HolidayCalendar("CN")
    assert calendar.substitutes_known(2025)
    assert calendar.holiday(date(2027, 2, 6))  # Spring Festival 2027 is known already
