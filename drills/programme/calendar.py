"""Calendars (.ics): the window for the client, the exact moments for the controllers.

The client's calendar is built from the plan alone — it never receives a drill moment, so
it cannot leak one. The controllers' calendar carries the moments in the plan's time zone
with the VTIMEZONE definitions calendar programs need.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event

from drills.programme.drill_plans import Blackout, DrillPlan
from drills.programme.schedule import ScheduledDrill
from engine.model.durations import format_duration

PRODID = "-//bcdrill//drill programme//EN"
WINDOW_SUMMARY = "Business-continuity drill window"
_UID_NAMESPACE = uuid.UUID("6f1f3c0e-2a4b-4f55-9a43-6c1d7b0e9a10")


def client_calendar(plan: DrillPlan, stamp: datetime | None = None) -> bytes:
    """The client's ``.ics``: one all-day event spanning the window, never the moment.

    ``stamp`` is the DTSTAMP (now by default; pass one for reproducible output).
    """
    calendar = _calendar(f"Drill window — {plan.client}")
    event = Event()
    event.add("uid", _uid("window", plan.client, plan.window.first, plan.window.last))
    event.add("dtstamp", _stamp(stamp))
    event.add("dtstart", plan.window.first)
    event.add("dtend", plan.window.last + timedelta(days=1))
    event.add("summary", WINDOW_SUMMARY)
    event.add("description", window_description(plan))
    event.add("transp", "TRANSPARENT")
    calendar.add_component(event)
    return calendar.to_ical()


def window_description(plan: DrillPlan) -> str:
    """What the client is told: window, time zone, business hours, blackouts, drill length."""
    count = "one unannounced drill" if plan.quota == 1 else f"{plan.quota} unannounced drills"
    lines = [
        f"{plan.client}: {count} will take place between {plan.window.first} and"
        f" {plan.window.last}, inside business hours ({plan.time_zone}):",
        plan.business_hours.describe(),
        f"A drill lasts up to {format_duration(plan.drill_length_s)}.",
    ]
    if plan.holidays is not None:
        weekday = plan.holidays.workday_hours
        lines.append(
            f"No drill on public holidays ({plan.holidays.describe()}); substitute workdays"
            f" have {weekday} business hours."
        )
    if plan.blackouts:
        lines.append("No drill on: " + "; ".join(_blackout_text(b) for b in plan.blackouts) + ".")
    lines.append("The exact moment is known only to the MSP's drill controllers.")
    return "\n".join(lines)


def _blackout_text(blackout: Blackout) -> str:
    dates = blackout.dates
    span = str(dates.first) if dates.first == dates.last else f"{dates.first} to {dates.last}"
    return f"{span} ({blackout.reason})" if blackout.reason else span


def controller_calendar(drills: Sequence[ScheduledDrill], stamp: datetime | None = None) -> bytes:
    """The controllers' ``.ics``: one CONFIDENTIAL event per drill at its exact moment.

    Times are in each drill's plan time zone; the VTIMEZONE components are added for the
    years the drills fall in.
    """
    calendar = _calendar("Drill moments — controllers only")
    for drill in drills:
        calendar.add_component(_drill_event(drill, _stamp(stamp)))
    if drills:
        first = min(d.start for d in drills).date() - timedelta(days=366)
        last = max(d.end for d in drills).date() + timedelta(days=366)
        calendar.add_missing_timezones(first_date=first, last_date=last)
    return calendar.to_ical()


def _drill_event(drill: ScheduledDrill, stamp: datetime) -> Event:
    event = Event()
    event.add("uid", _uid("drill", drill.client, drill.environment, drill.start.isoformat()))
    event.add("dtstamp", stamp)
    event.add("dtstart", drill.local_start())
    event.add("dtend", drill.local_start() + timedelta(seconds=drill.length_s))
    event.add("summary", f"Unannounced drill: {drill.client}")
    event.add(
        "description",
        f"Playbook: {drill.playbook}\nEnvironment: {drill.environment}\n"
        f"Length: {format_duration(drill.length_s)}\nConfidential: do not share with the client.",
    )
    event.add("class", "CONFIDENTIAL")
    return event


def _calendar(name: str) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    return calendar


def _uid(*parts: object) -> str:
    return f"{uuid.uuid5(_UID_NAMESPACE, '|'.join(str(p) for p in parts))}@bcdrill"


def _stamp(stamp: datetime | None) -> datetime:
    moment = stamp if stamp is not None else datetime.now(UTC)
    return moment.astimezone(UTC).replace(microsecond=0)
