"""Public-holiday calendars for drill plans, from the ``holidays`` package.

``holidays: CN`` in a plan closes every public holiday of China (Spring Festival, National
Day…) like a blackout, and opens the **substitute workdays** (调休: a Saturday or Sunday worked
in exchange for a bridge day off) with the business hours of one weekday (``workday_hours``,
Monday unless said otherwise). Hand-typed ``blackouts`` still apply on top.

Substitute workdays exist only for years the government has announced (China publishes the
next year's in November); ``substitutes_known`` tells whether a year has any yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import holidays as holiday_data

__all__ = ["HolidayCalendar", "calendar_problems"]

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class HolidayCalendar:
    """A country's (or subdivision's) public holidays and substitute workdays."""

    country: str
    subdivision: str | None = None
    workday_hours: str = "mon"  # the weekday whose business hours a substitute workday has

    def holiday(self, day: date) -> str | None:
        """The holiday's name on ``day``, or None on an ordinary day."""
        return _calendar(self.country, self.subdivision, day.year).get(day)

    def substitute_workday(self, day: date) -> bool:
        """Whether ``day`` is a weekend day worked in exchange for a day off."""
        return day in _calendar(self.country, self.subdivision, day.year).weekend_workdays

    def substitutes_known(self, year: int) -> bool:
        """Whether any substitute workday of ``year`` is known (announced) yet."""
        workdays = _calendar(self.country, self.subdivision, year).weekend_workdays
        return any(d.year == year for d in workdays)

    @property
    def workday_index(self) -> int:
        """``workday_hours`` as a weekday number (Monday = 0)."""
        return WEEKDAY_NAMES.index(self.workday_hours)

    def describe(self) -> str:
        """``CN`` or ``DE-BY``, for people."""
        return f"{self.country}-{self.subdivision}" if self.subdivision else self.country


@lru_cache(maxsize=64)
def _calendar(country: str, subdivision: str | None, year: int) -> holiday_data.HolidayBase:
    return holiday_data.country_holidays(country, subdiv=subdivision, years=year)


def calendar_problems(country: str, subdivision: str | None) -> list[str]:
    """Why ``country``/``subdivision`` is not a calendar the ``holidays`` package has (empty if it is)."""
    supported = holiday_data.list_supported_countries()
    if country not in supported:
        return [f"{country!r} is not a country code the holidays package knows (e.g. CN, DE, US, GB)"]
    if subdivision is not None and subdivision not in supported[country]:
        known = ", ".join(supported[country][:12]) or "none"
        return [f"{subdivision!r} is not a subdivision of {country} (known: {known}…)"]
    return []
