"""Drill plan v1: one client's yearly unannounced drill, as frozen dataclasses.

A plan says *where* (environment, playbooks) and *when a drill may happen* (a window of
dates, business hours in the client's time zone, blackout days, spacing and a quota). It
never says when the drill *will* happen: that moment is chosen by :mod:`drills.schedule`
and known only to the controllers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PLAN_FORMAT = "drill-plan/v1"
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
MAX_WINDOW_DAYS = 366

JsonScalar = str | int | float | bool | None


@dataclass(frozen=True)
class DayRange:
    """Part of a local day, ``[start_min, end_min)`` in minutes after local midnight.

    Written ``"09:30-17:00"``; ``"24:00"`` may end a range. The times are local wall-clock
    times: on a day with a DST change the range is the same on the clock, not in hours.
    """

    start_min: int
    end_min: int

    def __post_init__(self) -> None:
        if not 0 <= self.start_min < self.end_min <= MINUTES_PER_DAY:
            raise ValueError(f"range {self} must satisfy 00:00 <= start < end <= 24:00")

    @classmethod
    def parse(cls, text: str) -> DayRange:
        """Parse ``"HH:MM-HH:MM"``; raise ``ValueError`` naming the text when malformed."""
        parts = text.split("-") if isinstance(text, str) else []
        if len(parts) != 2:
            raise ValueError(f"{text!r} is not a range like '09:30-17:00'")
        return cls(_parse_clock(parts[0], text), _parse_clock(parts[1], text))

    def __str__(self) -> str:
        return f"{_format_clock(self.start_min)}-{_format_clock(self.end_min)}"


def _parse_clock(part: str, whole: str) -> int:
    pieces = part.strip().split(":")
    if len(pieces) != 2 or not all(p.isdigit() and len(p) == 2 for p in pieces):
        raise ValueError(f"{whole!r}: {part!r} is not a time like '09:30'")
    hours, minutes = int(pieces[0]), int(pieces[1])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"{whole!r}: {part!r} is not a time between 00:00 and 24:00")
    return hours * 60 + minutes


def _format_clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True)
class BusinessHours:
    """Business-hours ranges for each weekday, Monday first (seven entries)."""

    days: tuple[tuple[DayRange, ...], ...]

    def __post_init__(self) -> None:
        if len(self.days) != 7:
            raise ValueError(f"business hours need 7 weekdays, got {len(self.days)}")

    def on(self, day: date) -> tuple[DayRange, ...]:
        """The ranges that apply on ``day`` (by its weekday)."""
        return self.days[day.weekday()]

    def describe(self) -> str:
        """One line per weekday, e.g. ``mon 09:30-17:00``; ``closed`` when empty."""
        lines = []
        for name, ranges in zip(WEEKDAYS, self.days, strict=True):
            text = ", ".join(str(r) for r in ranges) if ranges else "closed"
            lines.append(f"{name} {text}")
        return "\n".join(lines)


@dataclass(frozen=True)
class DateRange:
    """Inclusive local dates ``first``..``last``."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"date range ends ({self.last}) before it starts ({self.first})")

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last

    def days(self) -> Iterator[date]:
        """Every date in the range, in order."""
        day = self.first
        while day <= self.last:
            yield day
            day += timedelta(days=1)

    @property
    def length_days(self) -> int:
        """Number of dates in the range."""
        return (self.last - self.first).days + 1


@dataclass(frozen=True)
class Blackout:
    """Local dates on which no drill may happen (``reason`` is for people, e.g. month-end)."""

    dates: DateRange
    reason: str = ""


@dataclass(frozen=True)
class Controller:
    """An MSP drill controller: one of the only people who learn the drill's moment."""

    name: str
    contact: str = ""


@dataclass(frozen=True)
class IncidentCheck:
    """Before a drill starts: ask ``http`` whether a real incident is open (then postpone).

    The check is open when the JSON answer's ``json_field`` equals ``equals``.
    """

    http: str
    json_field: str
    equals: JsonScalar


@dataclass(frozen=True)
class DrillPlan:
    """A validated drill plan for one client (``drill-plan/v1``).

    Durations are whole seconds. ``environment`` and ``playbooks`` are resolved against the
    plan file's folder. Each drill runs one playbook; the drills of one plan go through the
    playbooks in a random order, using every playbook once before any repeats.
    ``quota`` is the number of drills scheduled inside the window (at most a year long).
    """

    client: str
    environment: Path
    playbooks: tuple[Path, ...]
    window: DateRange
    time_zone: str
    business_hours: BusinessHours
    blackouts: tuple[Blackout, ...] = ()
    min_spacing_s: int = 0
    quota: int = 1
    drill_length_s: int = 3600
    controllers: tuple[Controller, ...] = ()
    notify: tuple[str, ...] = ()
    incident_check: IncidentCheck | None = None
    source: Path | None = None

    def __post_init__(self) -> None:
        problems = plan_problems(self)
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def zone(self) -> ZoneInfo:
        """The plan's IANA time zone."""
        return ZoneInfo(self.time_zone)

    @property
    def name(self) -> str:
        """How messages name this plan: the client, and the file when known."""
        return f"{self.client!r} ({self.source})" if self.source else repr(self.client)

    def blacked_out(self, day: date) -> bool:
        """Whether ``day`` (a local date) falls in any blackout."""
        return any(day in b.dates for b in self.blackouts)


def plan_problems(plan: DrillPlan) -> list[str]:
    """Checks a JSON Schema cannot express; each message names the field and the value."""
    problems: list[str] = []
    if not valid_time_zone(plan.time_zone):
        problems.append(f"time_zone: {plan.time_zone!r} is not an IANA zone like 'Europe/Berlin'")
    if plan.window.length_days > MAX_WINDOW_DAYS:
        problems.append(
            f"window: {plan.window.first}..{plan.window.last} is {plan.window.length_days} days;"
            f" a plan covers at most {MAX_WINDOW_DAYS} (write one plan per year)"
        )
    if not plan.playbooks:
        problems.append("playbooks: at least one playbook is needed")
    if plan.quota < 1:
        problems.append(f"quota: {plan.quota!r} must be at least 1")
    if plan.drill_length_s <= 0:
        problems.append(f"drill_length: {plan.drill_length_s!r}s must be positive")
    if plan.min_spacing_s < 0:
        problems.append(f"min_spacing: {plan.min_spacing_s!r}s must not be negative")
    if not any(plan.business_hours.days):
        problems.append("business_hours: every weekday is closed, so no drill can be scheduled")
    return problems


def valid_time_zone(name: str) -> bool:
    """Whether ``name`` is a time zone the system's tz database knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def whole_seconds(seconds: float) -> int:
    """Round a parsed duration up to whole seconds (a drill never gets shorter)."""
    return math.ceil(seconds)
