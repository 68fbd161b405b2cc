"""The value dashboard: score, outage minutes, person-hours and cost per drill over the years.

Pure layout of small inline-SVG charts on a dated axis (drills placed at their dates, a tick
per year — or per quarter for a short history), the year-on-year table, and the page as HTML
or a one-page PDF an account manager can send. Labels are measured
(:func:`~reports.renderers.textmetrics.text_width`) so they stay inside each drawing in every
language.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from reports.debrief.summary import RunSummary
from reports.i18n import Translator
from reports.renderers.textmetrics import text_width

__all__ = [
    "CHART_METRICS",
    "OUTCOME_COLOURS",
    "PDF_METRICS",
    "ChartDot",
    "SeriesChart",
    "YearRow",
    "series_chart",
    "year_rows",
]

WIDTH, HEIGHT = 460.0, 210.0
PAD_T, PAD_R, PAD_B = 14.0, 14.0, 30.0
TICK_SIZE = 10.0
COMPLETED = ("passed", "failed")
OUTCOME_COLOURS = {"passed": "#17b26a", "failed": "#d92d20", "aborted": "#f79009", "void": "#98a2b3"}


@dataclass(frozen=True)
class Metric:
    """One charted figure of a drill: its catalogue title and how to read and show it."""

    key: str
    value: Callable[[RunSummary], float | None]
    fixed_max: float | None = None


CHART_METRICS: tuple[Metric, ...] = (
    Metric("score", lambda p: p.score, 100.0),
    Metric("outage", lambda p: p.outage_s / 60.0),
    Metric("hours", lambda p: p.person_hours),
    Metric("cost", lambda p: p.cost),
)
PDF_METRICS = ("score", "hours", "cost")  # the one-page dashboard's three charts


@dataclass(frozen=True)
class ChartDot:
    """One drill on a chart."""

    cx: float
    cy: float
    colour: str
    tip: str


@dataclass(frozen=True)
class AxisLabel:
    """A tick with its label; ``x``/``y`` is where the label's anchor point is drawn."""

    x: float
    y: float
    text: str
    anchor: str
    size: float = TICK_SIZE


@dataclass(frozen=True)
class SeriesChart:
    """A line chart of one metric over dates, ready for a template."""

    key: str
    title: str
    width: float
    height: float
    left: float
    bottom: float
    line: str
    dots: tuple[ChartDot, ...]
    grid: tuple[float, ...]  # y of each horizontal grid line
    ticks: tuple[float, ...]  # x of each date tick
    labels: tuple[AxisLabel, ...]


def _nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10ⁿ at or above ``value`` (1 for nothing)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= value - 1e-12)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _date_ticks(start: datetime, end: datetime, t: Translator) -> list[tuple[datetime, str]]:
    """Year ticks (1 January); quarter ticks when fewer than two years show."""
    years = [datetime(y, 1, 1, tzinfo=UTC) for y in range(start.year, end.year + 2)]
    inside = [(d, t("trend.axis.year", year=d.year)) for d in years if start <= d <= end]
    if len(inside) >= 2:
        return inside
    quarters = [datetime(y, m, 1, tzinfo=UTC) for y in range(start.year, end.year + 1) for m in (1, 4, 7, 10)]
    return [(d, t("trend.axis.month", year=d.year, month=d.month)) for d in quarters if start <= d <= end]


def _domain(points: Sequence[RunSummary]) -> tuple[datetime, datetime]:
    first, last = points[0].started, points[-1].started
    pad = max((last - first) * 0.04, timedelta(days=20))
    return first - pad, last + pad


def series_chart(
    drills: Sequence[RunSummary], metric: Metric, t: Translator, currency: str = ""
) -> SeriesChart:
    """Lay out ``metric`` for every drill (oldest first) on a dated axis."""
    points = [p for p in drills if metric.value(p) is not None]
    values = [float(metric.value(p) or 0.0) for p in points]
    top = metric.fixed_max or _nice_max(max(values, default=0.0))
    steps = (0.0, 0.4, 0.7, 0.9, 1.0) if metric.key == "score" else (0.0, 0.25, 0.5, 0.75, 1.0)
    y_labels = [_fmt(top * s) for s in steps]
    left = max(text_width(label, TICK_SIZE) for label in y_labels) + 12.0
    bottom = HEIGHT - PAD_B
    span_y = bottom - PAD_T

    def y(value: float) -> float:
        return round(bottom - value / top * span_y, 2)

    pairs = zip(steps, y_labels, strict=True)
    labels = [AxisLabel(left - 6.0, y(top * s) + 3.5, label, "end") for s, label in pairs]
    dots: list[ChartDot] = []
    ticks: list[float] = []
    if points:
        start, end = _domain(points)
        span_x = WIDTH - PAD_R - left
        seconds = (end - start).total_seconds()

        def x(moment: datetime) -> float:
            return round(left + (moment - start).total_seconds() / seconds * span_x, 2)

        for p, value in zip(points, values, strict=True):
            tip = t(f"trend.tip.{metric.key}", date=p.started_at, title=p.playbook_title, value=value)
            dots.append(ChartDot(x(p.started), y(value), OUTCOME_COLOURS.get(p.outcome, "#98a2b3"), tip))
        for moment, text in _date_ticks(start, end, t):
            tick = x(moment)
            ticks.append(tick)
            half = text_width(text, TICK_SIZE) / 2
            centre = min(max(tick, half + 1.0), WIDTH - half - 1.0)  # never past either edge
            labels.append(AxisLabel(round(centre, 2), HEIGHT - 10.0, text, "middle"))
    title = t(f"trend.chart.{metric.key}", currency=currency)
    return SeriesChart(
        key=metric.key,
        title=title,
        width=WIDTH,
        height=HEIGHT,
        left=round(left, 2),
        bottom=bottom,
        line=" ".join(f"{d.cx},{d.cy}" for d in dots),
        dots=tuple(dots),
        grid=tuple(y(top * s) for s in steps),
        ticks=tuple(ticks),
        labels=tuple(labels),
    )


def charts(
    drills: Sequence[RunSummary], t: Translator, keys: Sequence[str] | None = None
) -> tuple[SeriesChart, ...]:
    """The dashboard's charts of ``drills`` (oldest first): all four, or those named in ``keys``."""
    currency = drills[-1].currency if drills else ""
    chosen = [m for m in CHART_METRICS if keys is None or m.key in keys]
    return tuple(series_chart(drills, m, t, currency) for m in chosen)


# ---------------------------------------------------------------- year on year


@dataclass(frozen=True)
class YearRow:
    """One calendar year of completed drills (averages per drill), and the change from the
    year before: a year with more drills must not look worse for it."""

    year: int
    drills: int
    score: float | None  # mean of the scored drills
    outage_s: float  # mean per drill
    person_hours: float  # mean per drill
    cost: float  # mean per drill
    currency: str
    score_change: float | None  # points against the previous year with drills
    outage_change_pct: float | None
    hours_change_pct: float | None
    cost_change_pct: float | None


def _pct(before: float | None, after: float) -> float | None:
    if before is None or before <= 0:
        return None
    return (after - before) / before * 100.0


def year_rows(drills: Sequence[RunSummary]) -> tuple[YearRow, ...]:
    """Averages per drill for each year, oldest first; aborted or void drills are left out."""
    by_year: dict[int, list[RunSummary]] = {}
    for p in drills:
        if p.outcome in COMPLETED:
            by_year.setdefault(p.started.year, []).append(p)
    rows: list[YearRow] = []
    for year in sorted(by_year):
        drills = by_year[year]
        scores = [p.score for p in drills if p.score is not None]
        score = sum(scores) / len(scores) if scores else None
        count = len(drills)
        outage = sum(p.outage_s for p in drills) / count
        hours = round(sum(p.person_hours for p in drills) / count, 2)
        cost = round(sum(p.cost for p in drills) / count, 2)
        before = rows[-1] if rows else None
        previous = (None,) * 3 if before is None else (before.outage_s, before.person_hours, before.cost)
        earlier = None if before is None else before.score
        score_change = None if earlier is None or score is None else score - earlier
        rows.append(
            YearRow(
                year=year,
                drills=len(drills),
                score=score,
                outage_s=outage,
                person_hours=hours,
                cost=cost,
                currency=drills[-1].currency,
                score_change=score_change,
                outage_change_pct=_pct(previous[0], outage),
                hours_change_pct=_pct(previous[1], hours),
                cost_change_pct=_pct(previous[2], cost),
            )
        )
    return tuple(rows)
