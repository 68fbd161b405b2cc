"""HTML debrief: one self-contained page (inline CSS, inline SVG timeline, no scripts).

The same page, printed by WeasyPrint, is the PDF (:mod:`reports.renderers.pdf`): print CSS
gives it A4 pages with the run id and page numbers in the margins.
"""

from __future__ import annotations

from markupsafe import Markup

from reports.debrief.model import Debrief
from reports.renderers.common import RenderOptions, context, html_env
from reports.renderers.svg import layout

# Chart colours as attributes (not only CSS), so that every SVG renderer draws them.
COLOURS = {
    "up": "#47cd89",
    "down": "#f04438",
    "fault": "#fdb022",
    "window": "#d0d5dd",
    "on_time": "#17b26a",
    "late": "#f79009",
    "missed": "#d92d20",
    "not_exercised": "#98a2b3",
    "not_reached": "#98a2b3",
}
STROKES = {
    "grid": Markup('stroke="#eceef2"'),
    "target": Markup('stroke="#344054" stroke-width="2"'),
    "impact": Markup('stroke="#b42318" stroke-dasharray="4 3"'),
}
LEGEND = (
    ("fault", "legend.fault"),
    ("up", "legend.up"),
    ("down", "legend.down"),
    ("window", "legend.window"),
    ("on_time", "legend.on_time"),
    ("late", "legend.late"),
    ("missed", "legend.missed"),
)
# Single quotes only: the list also goes into the SVG's font-family attribute.
LATIN_FONTS = Markup("system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif")
FONTS = {
    "en": LATIN_FONTS,
    # Simplified Chinese glyph forms first; Noto CJK SC also covers Latin letters and digits.
    "zh-CN": Markup("'Noto Sans CJK SC', 'Noto Sans SC', 'Source Han Sans SC', 'DejaVu Sans', sans-serif"),
}


def render(debrief: Debrief, options: RenderOptions) -> str:
    """The debrief as a standalone HTML5 page; every value is HTML-escaped by Jinja2."""
    template = html_env().get_template("debrief.html.j2")
    return template.render(
        context(
            debrief,
            options,
            chart=layout(debrief.timeline, options.t),
            colours=COLOURS,
            strokes=STROKES,
            legend=LEGEND,
            fonts=FONTS.get(options.lang, LATIN_FONTS),
        )
    )
