"""Geometry of the timeline chart: fault windows, probe up/down bands, steps against targets.

The layout is computed here as plain shapes; the HTML template only draws them (escaped),
so the chart needs no JavaScript and no external files.
"""

from __future__ import annotations

from dataclasses import dataclass

from reports.debrief.model import Timeline
from reports.i18n import Translator
from reports.renderers.textmetrics import fit_text, text_width

WIDTH = 920.0
LABEL_W = 210.0
RIGHT_PAD = 20.0
ROW_H = 22.0
BAR_H = 12.0
TOP = 30.0
ROW_FONT = 11.0  # row label size (the template draws it at this size)
TICK_FONT = 10.0
LABEL_GAP = 8.0  # between a row label's end and the plot
NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200)


@dataclass(frozen=True)
class Rect:
    """A bar; ``css`` picks its colour, ``tip`` becomes its tooltip."""

    x: float
    y: float
    w: float
    h: float
    css: str
    tip: str


@dataclass(frozen=True)
class Line:
    """A straight line (axis tick, target marker, impact start)."""

    x1: float
    y1: float
    x2: float
    y2: float
    css: str


@dataclass(frozen=True)
class Dot:
    """A step's recorded moment."""

    cx: float
    cy: float
    css: str
    tip: str


@dataclass(frozen=True)
class Label:
    """A text label."""

    x: float
    y: float
    text: str
    anchor: str
    css: str


@dataclass(frozen=True)
class Chart:
    """Everything the template draws."""

    width: float
    height: float
    rects: tuple[Rect, ...]
    lines: tuple[Line, ...]
    dots: tuple[Dot, ...]
    labels: tuple[Label, ...]


class _Scale:
    """Maps seconds to x pixels."""

    def __init__(self, lo: float, hi: float) -> None:
        self.lo = lo
        self.hi = hi if hi > lo else lo + 1.0
        self.span = WIDTH - LABEL_W - RIGHT_PAD

    def x(self, seconds: float) -> float:
        """Pixel x of an offset, clamped to the plot."""
        seconds = min(max(seconds, self.lo), self.hi)
        return round(LABEL_W + (seconds - self.lo) / (self.hi - self.lo) * self.span, 2)


def _width(x1: float, x2: float) -> float:
    """A bar's width in pixels, at least one so that instants stay visible."""
    return round(max(x2 - x1, 1.0), 2)


def _tick_step(span: float) -> float:
    return float(next((s for s in NICE_STEPS if span / s <= 10), NICE_STEPS[-1]))


def _axis(scale: _Scale, height: float, t: Translator) -> tuple[list[Line], list[Label]]:
    step = _tick_step(scale.hi - scale.lo)
    lines: list[Line] = []
    labels: list[Label] = []
    tick = (scale.lo // step) * step
    while tick <= scale.hi:
        if tick >= scale.lo:
            x = scale.x(tick)
            lines.append(Line(x, TOP - 6, x, height - 6, "grid"))
            text = t.duration(tick)
            half = text_width(text, TICK_FONT) / 2
            centre = round(min(max(x, half + 1.0), WIDTH - half - 1.0), 2)  # never past an edge
            labels.append(Label(centre, TOP - 10, text, "middle", "tick"))
        tick += step
    return lines, labels


def _plot_range(timeline: Timeline) -> tuple[float, float]:
    points = [timeline.start_s, timeline.end_s, 0.0]
    for mark in timeline.steps:
        points.append(mark.target_s)
        if mark.actual_s is not None:
            points.append(mark.actual_s)
    return min(points), max(points)


class _Builder:
    """Collects shapes row by row."""

    def __init__(self, timeline: Timeline, t: Translator) -> None:
        self.timeline = timeline
        self.t = t
        self.scale = _Scale(*_plot_range(timeline))
        self.rects: list[Rect] = []
        self.lines: list[Line] = []
        self.dots: list[Dot] = []
        self.labels: list[Label] = []
        self.y = TOP

    def row(self, title: str) -> float:
        """Start a labelled row; returns its top y."""
        top = self.y
        # Cut to the measured room, in any script (the tables show the full title).
        text = fit_text(title, ROW_FONT, LABEL_W - LABEL_GAP - 2.0)
        self.labels.append(Label(LABEL_W - LABEL_GAP, top + BAR_H - 2, text, "end", "row"))
        self.y += ROW_H
        return top

    def bar(self, start: float, stop: float, top: float, css: str, tip: str) -> None:
        """A full-height bar from ``start`` to ``stop`` seconds (at least one pixel wide)."""
        x1, x2 = self.scale.x(start), self.scale.x(stop)
        self.rects.append(Rect(x1, top, _width(x1, x2), BAR_H, css, tip))

    def faults(self) -> None:
        """One row per fault: the window it was in place."""
        for fault in self.timeline.faults:
            end = self.timeline.end_s if fault.to_s is None else fault.to_s
            if fault.to_s is None:
                tip = self.t("chart.fault_tip_open", fault=fault.id, start=fault.from_s)
            else:
                tip = self.t("chart.fault_tip", fault=fault.id, start=fault.from_s, end=end)
            self.bar(fault.from_s, end, self.row(self.t("chart.fault_row", fault=fault.id)), "fault", tip)

    def probes(self) -> None:
        """One row per probe: its up and down bands."""
        for track in self.timeline.probes:
            key = "chart.probe_row_steady" if track.steady_state else "chart.probe_row"
            top = self.row(self.t(key, probe=track.probe))
            for band in track.bands:
                tip = self.t(
                    f"chart.probe_tip_{band.state}", probe=track.probe, start=band.from_s, end=band.to_s
                )
                self.bar(band.from_s, band.to_s, top, band.state, tip)

    def steps(self) -> None:
        """One row per step: the window up to its target, and a dot when it was recorded."""
        for mark in self.timeline.steps:
            top = self.row(self.t("chart.step_row", party=mark.party, title=mark.title))
            x0, xt = self.scale.x(min(0.0, mark.target_s)), self.scale.x(mark.target_s)
            target = self.t("chart.target_tip", target=mark.target_s)
            self.rects.append(Rect(x0, top + 4, _width(x0, xt), BAR_H - 8, "window", target))
            self.lines.append(Line(xt, top - 1, xt, top + BAR_H + 1, "target"))
            if mark.actual_s is not None:
                tip = self.t(
                    "chart.step_tip",
                    title=mark.title,
                    actual=mark.actual_s,
                    target=mark.target_s,
                    status=mark.status,
                )
                x = self.scale.x(mark.actual_s)
                self.dots.append(Dot(x, top + BAR_H / 2, mark.status, tip))

    def chart(self) -> Chart:
        """Finish: impact-start line, axis and grid."""
        height = self.y + 10
        if self.timeline.origin == "impact_start":
            x = self.scale.x(0.0)
            self.lines.append(Line(x, TOP - 6, x, height - 6, "impact"))
        grid, ticks = _axis(self.scale, height, self.t)
        return Chart(
            WIDTH,
            height,
            tuple(self.rects),
            tuple(grid + self.lines),
            tuple(self.dots),
            tuple(self.labels + ticks),
        )


def layout(timeline: Timeline, t: Translator) -> Chart:
    """Lay out the chart of one run's timeline (labels in ``t``'s language): faults, probes, steps."""
    builder = _Builder(timeline, t)
    builder.faults()
    builder.probes()
    builder.steps()
    return builder.chart()
