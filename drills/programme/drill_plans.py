"""Drill plan v1: one client's yearly unannounced drill, as frozen dataclasses.

A plan says *where* (environment, playbooks) and *when a drill may happen* (a window of
dates, business hours in the client's time zone, blackout days, spacing and a quota). It
never says when the drill *will* happen: that moment is chosen by :mod:`drills.programme.schedule`
and known only to the controllers.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeAlias, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drills.programme.holiday_calendar import HolidayCalendar, calendar_problems
from drills.programme.plan_binding import plan_binding_problems
from engine.errors import InputError, Problem
from engine.model.durations import DURATION_PATTERN, parse_duration
from engine.spec.loader import schema_problems
from engine.spec.yamlsafe import JsonPath, YamlDocument, load_yaml

PLAN_FORMAT = "drill-plan/v1"
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
MAX_WINDOW_DAYS = 366
DEFAULT_CHECK_TIMEOUT_S = 10.0
MAX_CHECK_TIMEOUT_S = 120.0
MAX_POOL_NAME = 100

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
class HttpIncidentCheck:
    """Before a drill starts: ask a status or incident-tool URL whether a real incident is open.

    The check is open when the JSON answer's top-level ``json_field`` equals ``equals``.
    """

    http: str
    json_field: str
    equals: JsonScalar
    timeout_s: float = DEFAULT_CHECK_TIMEOUT_S

    def __post_init__(self) -> None:
        if not self.http.startswith(("http://", "https://")):
            raise ValueError(f"incident check URL {self.http!r} is not http:// or https://")
        if self.timeout_s <= 0:
            raise ValueError(f"incident check timeout {self.timeout_s!r}s must be positive")


@dataclass(frozen=True)
class CommandIncidentCheck:
    """Before a drill starts: run ``command`` (an argv list, no shell) to ask about incidents.

    Exit status 0 means a real incident is open, 1 means all clear; any other status, a
    command that cannot start or one still running after ``timeout_s`` counts as open.
    ``workdir`` is the folder it runs in (the plan file's folder when loaded from a file).
    """

    command: tuple[str, ...]
    timeout_s: float = DEFAULT_CHECK_TIMEOUT_S
    workdir: Path | None = None

    def __post_init__(self) -> None:
        if not self.command or not all(self.command):
            raise ValueError(f"incident command {self.command!r} needs a program and no empty arguments")
        if self.timeout_s <= 0:
            raise ValueError(f"incident check timeout {self.timeout_s!r}s must be positive")

    @property
    def program(self) -> str:
        """How messages name the command: its program only (arguments may carry secrets)."""
        return Path(self.command[0]).name


IncidentCheck: TypeAlias = HttpIncidentCheck | CommandIncidentCheck


@dataclass(frozen=True)
class DrillPlan:
    """A validated drill plan for one client (``drill-plan/v1``).

    Durations are whole seconds. ``environment`` and ``playbooks`` are resolved against the
    plan file's folder. Each drill runs one playbook; the drills of one plan go through the
    playbooks in a random order, using every playbook once before any repeats.
    ``quota`` is the number of drills scheduled inside the window (at most a year long).
    ``pool`` is the Prefect work pool of the client site's worker (None: the default pool).
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
    pool: str | None = None
    source: Path | None = None
    holidays: HolidayCalendar | None = None

    def __post_init__(self) -> None:
        problems = plan_problems(self)
        if problems:
            raise DrillPlanError(f"invalid drill plan for {self.client!r}: " + "; ".join(problems))

    @property
    def zone(self) -> ZoneInfo:
        """The plan's IANA time zone."""
        return ZoneInfo(self.time_zone)

    @property
    def name(self) -> str:
        """How messages name this plan: the client, and the file when known."""
        return f"{self.client!r} ({self.source})" if self.source else repr(self.client)

    def blacked_out(self, day: date) -> bool:
        """Whether ``day`` (a local date) falls in any blackout or is a public holiday."""
        if self.holidays is not None and self.holidays.holiday(day):
            return True
        return any(day in b.dates for b in self.blackouts)

    def hours_on(self, day: date) -> tuple[DayRange, ...]:
        """Business hours on ``day``: its weekday's, or ``workday_hours``' on a substitute workday."""
        if self.holidays is not None and self.holidays.substitute_workday(day):
            return self.business_hours.days[self.holidays.workday_index]
        return self.business_hours.on(day)


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
    if plan.pool is not None and not (_POOL.fullmatch(plan.pool) and len(plan.pool) <= MAX_POOL_NAME):
        problems.append(f"pool: {plan.pool!r} is not a work pool name like 'site-demo-bakery'")
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


# ---------------------------------------------------------------- loading drill-plan/v1 files


class DrillPlanError(InputError):
    """A drill plan failed to load or validate; ``problems`` are located in the file."""


# What a value must look like, by schema pattern: the loader says it in these words.
_PATTERN_HINTS = {
    r"^\d{4}-\d{2}-\d{2}$": "is not a date like '2027-01-31'",
    r"^([01]\d|2[0-4]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$": "is not a range like '09:30-17:00'",
    r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$": "is not a time zone like 'Europe/Berlin'",
    r"^[a-z][a-z0-9+.-]*://.+": "is not a URL like 'mailto://carla@msp.example'",
    r"^https?://.+": "is not an http:// or https:// URL",
    r"^[A-Za-z0-9][A-Za-z0-9._-]*$": "is not a work pool name like 'site-demo-bakery'",
}


@cache
def plan_schema() -> dict[str, Any]:
    """The packaged draft-07 JSON Schema of drill-plan/v1."""
    text = files("drills.programme").joinpath("schema", "drill-plan.schema.json").read_text("utf-8")
    return cast(dict[str, Any], json.loads(text))


def validate_plan_document(doc: YamlDocument) -> tuple[Problem, ...]:
    """Every problem of a loaded drill-plan document: schema, then meaning and files.

    Registered for ``bcdrill validate`` under the ``bcdrill.formats`` entry point
    ``drill-plan/v1``.
    """
    problems = schema_problems(doc, plan_schema(), hints=_PATTERN_HINTS)
    problems += sorted(_semantic_problems(doc), key=lambda p: (p.line, p.column))
    if not problems:  # a valid plan must also bind: its playbooks resolve in its environment
        problems += plan_binding_problems(doc)
    return tuple(dict.fromkeys(problems))


def load_plan(path: Path) -> DrillPlan:
    """Load and fully validate a drill plan; raise :class:`DrillPlanError` listing every problem.

    ``environment`` and ``playbooks`` are resolved against the plan file's folder and must
    exist (they are not validated here: ``bcdrill validate`` them, or load them to run).
    """
    try:
        doc = load_yaml(path)
    except InputError as exc:
        raise DrillPlanError(str(exc), exc.problems) from exc
    problems = validate_plan_document(doc)
    if problems:
        raise DrillPlanError(f"{path}: {len(problems)} problem(s)", problems)
    return _build(doc.data, path)


def _semantic_problems(doc: YamlDocument) -> Iterator[Problem]:
    data = doc.data
    yield from _check_window(doc, data.get("window"))
    zone = data.get("time_zone")
    if isinstance(zone, str) and _IANA.fullmatch(zone) and not valid_time_zone(zone):
        yield doc.problem(("time_zone",), f"unknown time zone {zone!r} (IANA, like 'Europe/Berlin')")
    yield from _check_hours(doc, data.get("business_hours"))
    for i, item in enumerate(_as_list(data.get("blackouts"))):
        if isinstance(item, dict):
            yield from _check_range(doc, ("blackouts", i), item.get("from"), item.get("to"), "from")
        else:
            yield from _check_range(doc, ("blackouts", i), item, item, None)
    yield from _check_durations(doc)
    yield from _check_incident(doc, data.get("incident_check"))
    yield from _check_holidays(doc, data.get("holidays"))
    yield from _check_files(doc)


_IANA = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_POOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_RANGE = re.compile(r"([01]\d|2[0-4]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _check_window(doc: YamlDocument, window: Any) -> Iterator[Problem]:
    if not isinstance(window, dict):
        return
    yield from _check_range(doc, ("window",), window.get("start"), window.get("end"), "start")
    first, last = _date(window.get("start")), _date(window.get("end"))
    if first and last and (last - first).days + 1 > MAX_WINDOW_DAYS:
        message = (
            f"{first}..{last} is {(last - first).days + 1} days; a plan covers at most"
            f" {MAX_WINDOW_DAYS} (write one plan per year)"
        )
        yield doc.problem(("window", "end"), message)


def _check_range(
    doc: YamlDocument, path: JsonPath, first: Any, last: Any, first_key: str | None
) -> Iterator[Problem]:
    """Dates that match the pattern but are not real (2027-02-30), or end before they start."""
    last_key = {"start": "end", "from": "to"}.get(first_key or "")
    for value, key in ((first, first_key), (last, last_key)):
        where = (*path, key) if key else path
        if isinstance(value, str) and _DATE.fullmatch(value) and _date(value) is None:
            yield doc.problem(where, f"{value!r} is not a real date")
    start, end = _date(first), _date(last)
    if start and end and end < start:
        where = (*path, last_key) if last_key else path
        yield doc.problem(where, f"{last!r} is before {first!r}")


def _check_hours(doc: YamlDocument, hours: Any) -> Iterator[Problem]:
    if not isinstance(hours, dict):
        return
    for day, ranges in hours.items():
        parsed: list[tuple[int, DayRange]] = []
        for i, text in enumerate(_as_list(ranges)):
            if not isinstance(text, str) or not _RANGE.fullmatch(text):
                continue
            try:
                parsed.append((i, DayRange.parse(text)))
            except ValueError as exc:
                yield doc.problem(("business_hours", day, i), str(exc))
        ordered = sorted(parsed, key=lambda item: item[1].start_min)
        for (_, before), (i, after) in itertools.pairwise(ordered):
            if after.start_min < before.end_min:
                yield doc.problem(("business_hours", day, i), f"{after} overlaps {before}")
    if all(isinstance(v, list) and not v for v in hours.values()) and hours:
        yield doc.problem(("business_hours",), "every weekday is closed: no drill can happen")


def _check_durations(doc: YamlDocument) -> Iterator[Problem]:
    for key in ("min_spacing", "drill_length"):
        text = doc.data.get(key)
        if not isinstance(text, str) or not re.fullmatch(DURATION_PATTERN, text):
            continue
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            yield doc.problem((key,), str(exc))
            continue
        if key == "drill_length" and not 0 < seconds <= MINUTES_PER_DAY * 60:
            yield doc.problem((key,), f"{text!r} must be longer than zero and at most 24h")


def _check_incident(doc: YamlDocument, check: Any) -> Iterator[Problem]:
    """Exactly one of ``http`` / ``command``; ``open_when`` with ``http`` only; the timeout."""
    if not isinstance(check, dict):
        return
    where: JsonPath = ("incident_check",)
    if "http" in check and "command" in check:
        message = "give either http (a status URL) or command (an argv list), not both"
        yield doc.problem((*where, "command"), message, at_key=True)
    elif "http" not in check and "command" not in check:
        yield doc.problem(where, "give one of http (a status URL) or command (an argv list)")
    if "http" in check and "open_when" not in check:
        yield doc.problem(where, "http needs open_when: {json_field: ..., equals: ...}")
    if "command" in check and "http" not in check and "open_when" in check:
        message = "open_when is for http only: a command answers by its exit status (0 open, 1 clear)"
        yield doc.problem((*where, "open_when"), message, at_key=True)
    text = check.get("timeout")
    if not isinstance(text, str) or not re.fullmatch(DURATION_PATTERN, text):
        return
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        yield doc.problem((*where, "timeout"), str(exc))
        return
    if not 0 < seconds <= MAX_CHECK_TIMEOUT_S:
        limit = f"{MAX_CHECK_TIMEOUT_S:g}s"
        yield doc.problem((*where, "timeout"), f"{text!r} must be longer than zero and at most {limit}")


def _check_holidays(doc: YamlDocument, value: Any) -> Iterator[Problem]:
    where: JsonPath
    if isinstance(value, str):
        country, subdivision, where = value, None, ("holidays",)
    elif isinstance(value, dict) and isinstance(value.get("country"), str):
        country, subdivision, where = value["country"], value.get("subdivision"), ("holidays", "country")
    else:
        return  # absent, or a shape the schema reported
    for message in calendar_problems(country, subdivision if isinstance(subdivision, str) else None):
        yield doc.problem(where, message)


def _check_files(doc: YamlDocument) -> Iterator[Problem]:
    base = Path(doc.file).parent
    refs: list[tuple[JsonPath, Any]] = [(("environment",), doc.data.get("environment"))]
    refs += [(("playbooks", i), p) for i, p in enumerate(_as_list(doc.data.get("playbooks")))]
    for path, ref in refs:
        if isinstance(ref, str) and ref and not (base / ref).is_file():
            yield doc.problem(path, f"no such file {ref!r} (looked for {base / ref})")
    check = doc.data.get("incident_check")
    argv = _as_list(check.get("command")) if isinstance(check, dict) else []
    program = argv[0] if argv else None
    if not isinstance(program, str) or not _is_relative_path(program):
        return
    where = ("incident_check", "command", 0)
    if not (base / program).is_file():
        yield doc.problem(where, f"no such program {program!r} (looked for {base / program})")
    elif not os.access(base / program, os.X_OK):
        yield doc.problem(where, f"program {program!r} is not executable (chmod +x {base / program})")


def _is_relative_path(program: str) -> bool:
    """``./check.sh`` or ``bin/check``: a path next to the plan (bare names come from PATH)."""
    return "/" in program and not program.startswith("/")


def _build(data: dict[str, Any], source: Path) -> DrillPlan:
    base = source.parent
    window = data["window"]
    return DrillPlan(
        client=data["client"],
        environment=(base / data["environment"]).resolve(),
        playbooks=tuple((base / p).resolve() for p in data["playbooks"]),
        window=DateRange(date.fromisoformat(window["start"]), date.fromisoformat(window["end"])),
        time_zone=data["time_zone"],
        business_hours=_build_hours(data["business_hours"]),
        blackouts=tuple(_build_blackout(b) for b in data.get("blackouts", [])),
        min_spacing_s=whole_seconds(parse_duration(data.get("min_spacing", "0s"))),
        quota=int(data.get("quota", 1)),
        drill_length_s=whole_seconds(parse_duration(data.get("drill_length", "1h"))),
        controllers=tuple(Controller(c["name"], c.get("contact", "")) for c in data["controllers"]),
        notify=tuple(data.get("notify", [])),
        incident_check=_build_incident_check(data.get("incident_check"), base),
        pool=data.get("pool"),
        source=source,
        holidays=_build_holidays(data.get("holidays")),
    )


def _build_holidays(data: str | dict[str, str] | None) -> HolidayCalendar | None:
    if data is None:
        return None
    if isinstance(data, str):
        return HolidayCalendar(data)
    return HolidayCalendar(data["country"], data.get("subdivision"), data.get("workday_hours", "mon"))


def _build_incident_check(data: dict[str, Any] | None, base: Path) -> IncidentCheck | None:
    """The plan's check; a relative program path (``./check.sh``) is resolved against ``base``."""
    if data is None:
        return None
    timeout_s = parse_duration(data.get("timeout", f"{DEFAULT_CHECK_TIMEOUT_S:g}s"))
    if "http" in data:
        when = data["open_when"]
        return HttpIncidentCheck(data["http"], when["json_field"], when["equals"], timeout_s)
    argv = list(data["command"])
    if _is_relative_path(argv[0]):
        argv[0] = str((base / argv[0]).resolve())
    return CommandIncidentCheck(tuple(argv), timeout_s, base.resolve())


def _build_hours(data: dict[str, list[str]]) -> BusinessHours:
    days = []
    for name in WEEKDAYS:
        ranges = sorted((DayRange.parse(t) for t in data.get(name, [])), key=lambda r: r.start_min)
        days.append(tuple(ranges))
    return BusinessHours(tuple(days))


def _build_blackout(item: str | dict[str, str]) -> Blackout:
    if isinstance(item, str):
        day = date.fromisoformat(item)
        return Blackout(DateRange(day, day))
    first = date.fromisoformat(item["from"])
    last = date.fromisoformat(item.get("to", item["from"]))
    return Blackout(DateRange(first, last), item.get("reason", ""))
