"""What the renderers share: the Jinja2 environments and the filters that format numbers."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from engine.durations import format_duration
from reports.model import Debrief, ObjectiveResult, StepResult

PARTY_NAMES = {"msp": "MSP", "client": "Client", "drill": "Drill"}
RATING_NAMES = {
    "P": "performed without challenges",
    "S": "performed with some challenges",
    "M": "performed with major challenges",
    "U": "unable to be performed",
}
STATUS_NAMES = {
    "on_time": "on time",
    "late": "late",
    "missed": "missed",
    "not_exercised": "not exercised",
}


def fmt_duration(seconds: float | None) -> str:
    """Seconds as ``4m05s`` / ``12.3s``, or a dash."""
    return format_duration(seconds)


def fmt_score(score: float | None) -> str:
    """A 0-100 score with one decimal, or a dash when it does not count."""
    return "—" if score is None else f"{score:.1f}"


def fmt_verdict(objective: ObjectiveResult) -> str:
    """An objective's verdict in words: met, missed, not measured, or no target."""
    if objective.met is not None:
        return "met" if objective.met else "missed"
    if objective.target_s is None and objective.actual_s is not None:
        return "no target"
    return "not measured"


def fmt_number(value: float, places: int = 2) -> str:
    """A number with thousands separators."""
    return f"{value:,.{places}f}"


def md_cell(value: object) -> str:
    """Text safe inside a Markdown table cell: no pipes, line breaks or raw HTML."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|")


def party_steps(debrief: Debrief, party: str) -> list[StepResult]:
    """The steps of one party, in playbook order."""
    return [s for s in debrief.steps if s.party == party]


def _filters(env: Environment) -> Environment:
    env.filters.update(
        dur=fmt_duration,
        score=fmt_score,
        verdict=fmt_verdict,
        number=fmt_number,
        party=lambda p: PARTY_NAMES.get(p, p),
        status=lambda s: STATUS_NAMES.get(s, s),
        rating_name=lambda r: RATING_NAMES.get(r, "no rating") if r else "no rating",
    )
    env.globals.update(party_steps=party_steps)
    return env


@cache
def markdown_env() -> Environment:
    """Jinja2 for Markdown: no HTML autoescaping (cells go through ``md``), strict undefined."""
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=False,  # noqa: S701 - Markdown, not HTML: table cells go through ``md``
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_cell
    return _filters(env)


@cache
def html_env() -> Environment:
    """Jinja2 for HTML: autoescape on, strict undefined."""
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return _filters(env)
