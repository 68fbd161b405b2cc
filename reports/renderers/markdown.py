"""Markdown debrief: a scorecard, each party's steps against targets, objectives, the plan."""

from __future__ import annotations

from reports.debrief.model import Debrief
from reports.renderers.common import RenderOptions, context, markdown_env


def render(debrief: Debrief, options: RenderOptions) -> str:
    """The debrief as GitHub/GitLab-flavoured Markdown."""
    return markdown_env().get_template("debrief.md.j2").render(context(debrief, options))
