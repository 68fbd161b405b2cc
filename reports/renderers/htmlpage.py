"""HTML debrief: one self-contained page (inline CSS, inline SVG timeline, no scripts)."""

from __future__ import annotations

from reports.model import Debrief
from reports.renderers.common import html_env
from reports.renderers.svg import layout


def render(debrief: Debrief) -> str:
    """The debrief as a standalone HTML5 page; every value is HTML-escaped by Jinja2."""
    template = html_env().get_template("debrief.html.j2")
    return template.render(d=debrief, chart=layout(debrief.timeline))
