"""Translations of every human-facing report string: message catalogues and local formats.

Catalogues live in ``reports/locales/<lang>.json`` (flat ``key -> template``). Templates use
named placeholders only, with optional format specs for values that need the reader's
language or time zone::

    "finding.step_late.title": "{party:party} step {title!r} was late"
    "compare.date": "{when:date}"

Specs beyond Python's own: ``dur`` (seconds → ``4m05s`` / ``4分05秒``), ``score`` (one
decimal or a dash), ``num`` (two decimals with separators), ``int``, ``pct`` (a whole
percentage, sign dropped: the sentence says fell or rose), ``abs1`` (one decimal, no sign),
``date`` and ``datetime`` (an ISO UTC time in the reader's zone, the zone shown),
``party``, ``status``, ``rating``. A whole sentence is one template: translated pieces are
never glued together.

>>> t = translator("zh-CN", "Asia/Shanghai")
>>> t("status.late")
'迟到'
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import InputError
from reports.debrief.model import Message, score_text

LANGUAGES: tuple[str, ...] = ("en", "zh-CN")
DEFAULT_LANGUAGE = "en"
DEFAULT_TZ = "UTC"
DASH = "—"


class CatalogueError(KeyError):
    """A message key or placeholder is missing from a catalogue (a bug in the reports)."""

    def __str__(self) -> str:
        return str(self.args[0])


@cache
def catalogue(lang: str) -> Mapping[str, str]:
    """The messages of ``lang`` as shipped in ``reports/locales/``."""
    if lang not in LANGUAGES:
        raise InputError(f"unknown report language {lang!r} (known: {', '.join(LANGUAGES)})")
    text = files("reports").joinpath("locales", f"{lang}.json").read_text(encoding="utf-8")
    data = json.loads(text)
    return {str(k): str(v) for k, v in data.items() if not k.startswith("//")}


def zone(tz: str) -> ZoneInfo:
    """The IANA time zone ``tz``; an unknown name is an input error (exit code 2)."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"unknown time zone {tz!r} (use an IANA name such as 'Europe/Paris')") from exc


def parse_utc(value: str) -> datetime:
    """An ISO time from a journal or debrief (``Z`` or an offset), as an aware datetime."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _Formatter(string.Formatter):
    """``str.format`` with the report specs (``dur``, ``date``…) handled by a translator."""

    def __init__(self, specs: Mapping[str, Callable[[Any], str]]) -> None:
        super().__init__()
        self.specs = specs

    def format_field(self, value: Any, format_spec: str) -> Any:
        handler = self.specs.get(format_spec)
        if handler is not None:
            return handler(value)
        return super().format_field(value, format_spec)


class Translator:
    """Messages and formats of one language, with dates shown in one time zone."""

    def __init__(self, lang: str = DEFAULT_LANGUAGE, tz: str = DEFAULT_TZ) -> None:
        self.lang = lang
        self.tz = tz
        self.zone = zone(tz)
        self.messages = catalogue(lang)
        self._formatter = _Formatter(
            {
                "dur": self.duration,
                "score": self.score,
                "num": self.number,
                "int": lambda v: f"{int(v):,d}",
                "pct": lambda v: f"{abs(float(v)):.0f}",
                "abs1": lambda v: f"{abs(float(v)):.1f}",
                "date": self.date,
                "datetime": self.datetime,
                "party": lambda v: self(f"party.{v}"),
                "status": lambda v: self(f"status.{v}"),
                "rating": self.rating,
            }
        )

    def has(self, key: str) -> bool:
        """True when the catalogue has ``key``."""
        return key in self.messages

    def __call__(self, key: str, /, **params: Any) -> str:
        """The message ``key`` with ``params`` filled in."""
        try:
            template = self.messages[key]
        except KeyError:
            raise CatalogueError(f"message {key!r} is missing from the {self.lang!r} catalogue") from None
        try:
            return self._formatter.vformat(template, (), params)
        except (KeyError, IndexError) as exc:
            raise CatalogueError(
                f"message {key!r} ({self.lang}) needs placeholder {exc.args[0]!r}; given {sorted(params)}"
            ) from None

    def term(self, group: str, value: str) -> str:
        """A word from a closed list (``env_kind``, ``responders``…): translated when the
        catalogue knows it, else the value as written (e.g. a third-party responder's name)."""
        key = f"{group}.{value}"
        return self(key) if key in self.messages else value

    def message(self, msg: Message | None, fallback: str = "") -> str:
        """A stored :class:`Message` in this language (``fallback`` when there is none)."""
        if msg is None:
            return fallback
        return self(msg.key, **dict(msg.params))

    # ---------------------------------------------------------------- formats

    def duration(self, seconds: float | None) -> str:
        """Seconds as a short duration in this language, or a dash."""
        if seconds is None:
            return DASH
        sign = "-" if seconds < 0 else ""
        seconds = abs(float(seconds))
        if seconds < 60:
            return sign + self("duration.seconds", s=seconds)
        hours, rest = divmod(round(seconds), 3600)
        minutes, secs = divmod(rest, 60)
        if hours:
            return sign + self("duration.hours", h=hours, m=minutes)
        return sign + self("duration.minutes", m=minutes, s=secs)

    def score(self, value: float | None) -> str:
        """A 0-100 score with one decimal, never above the score judged; or a dash."""
        return score_text(value)

    def number(self, value: float | None) -> str:
        """A number with two decimals and thousands separators."""
        return DASH if value is None else f"{float(value):,.2f}"

    def rating_name(self, value: str | None) -> str:
        """What an HSEEP rating letter means (``no rating`` for none)."""
        return self(f"rating.{value}") if value else self("rating.none")

    def rating(self, value: str | None) -> str:
        """An HSEEP rating letter with its meaning."""
        if not value:
            return self("rating.none")
        return self("rating.with_name", letter=value, name=self.rating_name(value))

    def zone_label(self) -> str:
        """How the time zone is shown next to times: ``UTC`` or ``Europe/Paris``."""
        return "UTC" if self.tz in ("UTC", "Etc/UTC") else self.tz

    def _local(self, value: str) -> datetime:
        return parse_utc(value).astimezone(self.zone)

    def datetime(self, value: str | None) -> str:
        """An ISO UTC time as local date and time in this zone, with the zone and its offset."""
        if not value:
            return DASH
        moment = self._local(str(value))
        offset = moment.strftime("%z")
        return self(
            "datetime",
            year=moment.year,
            month=moment.month,
            day=moment.day,
            hour=moment.hour,
            minute=moment.minute,
            second=moment.second,
            zone=self.zone_label(),
            offset=f"{offset[:3]}:{offset[3:]}",
        )

    def date(self, value: str | None) -> str:
        """An ISO UTC time as a local date in this zone."""
        if not value:
            return DASH
        moment = self._local(str(value))
        return self("date", year=moment.year, month=moment.month, day=moment.day)


@cache
def translator(lang: str = DEFAULT_LANGUAGE, tz: str = DEFAULT_TZ) -> Translator:
    """The (shared, immutable) translator for ``lang`` and ``tz``."""
    return Translator(lang, tz)


def placeholders(template: str) -> set[str]:
    """The placeholder names a template uses (for catalogue consistency checks)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


__all__ = [
    "DEFAULT_LANGUAGE",
    "DEFAULT_TZ",
    "LANGUAGES",
    "CatalogueError",
    "Translator",
    "catalogue",
    "parse_utc",
    "placeholders",
    "translator",
    "zone",
]
