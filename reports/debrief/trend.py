"""Trends across a client's drills: a table, an inline SVG chart and JSON, from the run store.

Pure functions of :class:`~reports.debrief.summary.RunSummary` lists; reading the run store is
:func:`reports.debrief_writer.summaries`. A thousand runs take well under two seconds
(``benchmarks/reports_bench.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from rich.table import Table
from rich.text import Text

from reports.debrief.summary import RunSummary
from reports.i18n import Translator
from reports.renderers.common import html_env
from reports.renderers.dashboard import OUTCOME_COLOURS, PDF_METRICS, charts, year_rows
from reports.renderers.htmlpage import FONTS, LATIN_FONTS
from reports.renderers.pdf import print_html

TREND_FORMATS = ("table", "html", "pdf", "json")
CHART_W, CHART_H = 920.0, 260.0
PAD_L, PAD_R, PAD_T, PAD_B = 48.0, 16.0, 16.0, 36.0


@dataclass(frozen=True)
class Trend:
    """A client's drills, oldest first."""

    client: str
    points: tuple[RunSummary, ...]


def same_client(summary: RunSummary, client: str) -> bool:
    """True when ``client`` names the summary's client (case and spacing do not matter)."""
    return " ".join(summary.client.split()).casefold() == " ".join(client.split()).casefold()


RUN_CLASSES = ("drill", "rehearsal", "ci", "all")


def of_class(summary: RunSummary, run_class: str) -> bool:
    """True when the summary belongs in a trend of ``run_class``.

    The ``drill`` trend (the client's record) holds completed official drills only; the
    others show every run of their class, void and aborted ones included.
    """
    if run_class == "drill":
        return summary.counts
    return run_class == "all" or summary.run_class == run_class


def build_trend(
    summaries: Iterable[RunSummary], client: str, playbook: str | None = None, run_class: str = "drill"
) -> Trend:
    """The runs of ``client`` of one class (optionally of one playbook), oldest first."""
    points = sorted(
        (
            s
            for s in summaries
            if same_client(s, client)
            and (playbook is None or s.playbook_id == playbook)
            and of_class(s, run_class)
        ),
        key=lambda s: s.order,
    )
    name = points[0].client if points else client
    return Trend(name, tuple(points))


# ---------------------------------------------------------------- table and JSON


def trend_table(trend: Trend, t: Translator) -> Table:
    """A rich table: one row per drill."""
    table = Table(title=t("trend.title", client=trend.client), title_justify="left")
    for key, justify in (
        ("trend.col.date", "left"),
        ("trend.col.scenario", "left"),
        ("trend.col.class", "left"),
        ("trend.col.scale", "right"),
        ("col.result", "left"),
        ("col.score", "right"),
        ("col.rating", "left"),
        ("party.msp", "right"),
        ("party.client", "right"),
        ("trend.col.rto", "right"),
        ("impact.person_hours", "right"),
        ("impact.cost", "right"),
        ("trend.col.findings", "right"),
    ):
        table.add_column(t(key), justify=justify)  # type: ignore[arg-type]
    for p in trend.points:
        table.add_row(
            t.date(p.started_at),
            Text(p.playbook_title),
            t(f"class.{p.run_class}") if p.run_class in ("drill", "rehearsal", "ci") else p.run_class,
            f"×{p.time_scale:g}",
            t(f"outcome_word.{p.outcome}"),
            t.score(p.score),
            p.rating or "—",
            t.score(p.msp_score),
            t.score(p.client_score),
            t("trend.rto", actual=p.rto_actual_s, target=p.rto_target_s),
            t.number(p.person_hours),
            t("trend.cost", cost=p.cost, currency=p.currency),
            str(p.findings),
        )
    return table


def trend_json(trend: Trend) -> str:
    """The trend as JSON (``bcdrill/trend/v1``)."""
    document = {
        "format": "bcdrill/trend/v1",
        "client": trend.client,
        "runs": [asdict(p) for p in trend.points],
    }
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------- chart


@dataclass(frozen=True)
class TrendDot:
    """One drill on the chart."""

    cx: float
    cy: float
    colour: str
    tip: str


@dataclass(frozen=True)
class TrendChart:
    """Score over time: a polyline, one dot per drill, the band lines and axis labels."""

    width: float
    height: float
    line: str
    dots: tuple[TrendDot, ...]
    grid: tuple[tuple[float, str], ...]  # (y, label) for scores 0, 40, 70, 90, 100
    first: str
    last: str


def trend_chart(trend: Trend, t: Translator) -> TrendChart:
    """Lay out the score chart (drills evenly spaced in time order; unscored drills at 0)."""
    count = len(trend.points)
    span_x = CHART_W - PAD_L - PAD_R
    span_y = CHART_H - PAD_T - PAD_B

    def y(score: float) -> float:
        return round(PAD_T + (100.0 - score) / 100.0 * span_y, 2)

    dots: list[TrendDot] = []
    for index, p in enumerate(trend.points):
        x = PAD_L + (span_x / 2 if count == 1 else index * span_x / (count - 1))
        tip = t(
            "trend.tip",
            date=p.started_at,
            title=p.playbook_title,
            score=p.score,
            outcome=t(f"outcome_word.{p.outcome}"),
        )
        dots.append(TrendDot(round(x, 2), y(p.score or 0.0), OUTCOME_COLOURS.get(p.outcome, "#98a2b3"), tip))
    grid = tuple((y(v), f"{v:g}") for v in (0.0, 40.0, 70.0, 90.0, 100.0))
    return TrendChart(
        width=CHART_W,
        height=CHART_H,
        line=" ".join(f"{d.cx},{d.cy}" for d in dots),
        dots=tuple(dots),
        grid=grid,
        first=t.date(trend.points[0].started_at) if trend.points else "",
        last=t.date(trend.points[-1].started_at) if trend.points else "",
    )


def trend_html(
    trend: Trend,
    t: Translator,
    links: dict[str, str] | None = None,
    *,
    pdf: bool = False,
    pdf_link: str | None = None,
) -> str:
    """A self-contained HTML page: the value dashboard's charts (score, outage minutes,
    person-hours, cost on a dated axis), the year-on-year table and every drill
    (``links``: run id → URL). ``pdf=True`` lays it out as the one-page dashboard: three
    charts and the year-on-year table."""
    template = html_env().get_template("trend.html.j2")
    return template.render(
        trend=trend,
        t=t,
        chart=trend_chart(trend, t),
        charts=charts(trend.points, t, PDF_METRICS if pdf else None),
        years=year_rows(trend.points),
        links=links or {},
        pdf=pdf,
        pdf_link=pdf_link,
        lang=t.lang,
        fonts=FONTS.get(t.lang, LATIN_FONTS),
    )


def trend_pdf(trend: Trend, t: Translator) -> bytes:
    """The one-page value dashboard as PDF (A4 landscape, printed by WeasyPrint)."""
    return print_html(trend_html(trend, t, pdf=True))
