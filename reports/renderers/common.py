"""What the renderers share: render options, the Jinja2 environments and wording helpers.

Every human-facing word comes from the message catalogue of the requested language
(:mod:`reports.i18n`); templates get the translator as ``t`` and these helpers as globals.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, FileSystemBytecodeCache, PackageLoader, StrictUndefined
from markupsafe import Markup

from reports.debrief.model import Audience, Debrief, FaultResult, FollowUp, ObjectiveResult, StepResult
from reports.debrief.objective_notes import objective_note
from reports.debrief.wording import executive_paragraph, verdict
from reports.i18n import DEFAULT_LANGUAGE, DEFAULT_TZ, Translator, translator
from reports.renderers.comparison import comparison_sentences


@dataclass(frozen=True)
class RenderOptions:
    """How to render: the reader's language, time zone, and which version (client/internal)."""

    lang: str = DEFAULT_LANGUAGE
    tz: str = DEFAULT_TZ
    audience: Audience = "internal"

    @property
    def t(self) -> Translator:
        """The translator for this language and time zone."""
        return translator(self.lang, self.tz)


def verdict_css(objective: ObjectiveResult) -> str:
    """The CSS class of an objective's verdict pill."""
    if objective.met is None:
        return "not-measured"
    return "met" if objective.met else "missed"


def fault_status(t: Translator, fault: FaultResult) -> str:
    """Where a fault ended, in words (a reverted fault says whether the revert was verified)."""
    if fault.status == "reverted":
        return t(
            "fault.status.reverted_verified" if fault.revert_verified else "fault.status.reverted_unverified"
        )
    return t(f"fault.status.{fault.status}")


def days(t: Translator, count: int) -> str:
    """``1 day`` / ``14 days`` in this language."""
    return t("days.one" if count == 1 else "days.other", n=count)


def follow_up_measure(t: Translator, item: FollowUp, which: str) -> str:
    """How the tested thing went before (``before``) or now (``after``), in words."""
    value = item.before if which == "before" else item.after
    if value is None:
        return t("follow_up.not_tested")
    status = t(f"measure.{value.status}")
    if value.value_s is None:
        return status
    return t("follow_up.measure_time", status=status, time=value.value_s)


def party_steps(debrief: Debrief, party: str) -> list[StepResult]:
    """The steps of one party, in playbook order."""
    return [s for s in debrief.steps if s.party == party]


def md_cell(value: object) -> str:
    """Text safe inside a Markdown table cell: no pipes, line breaks or raw HTML."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|")


def css_string(text: str) -> Markup:
    """``text`` as a quoted CSS string: every character but ASCII letters, digits and spaces is
    a hex escape, so nothing in it can end the string or the ``<style>`` element."""
    escaped = "".join(c if (c.isascii() and c.isalnum()) or c == " " else f"\\{ord(c):06x}" for c in text)
    return Markup(f'"{escaped}"')  # noqa: S704 - only [A-Za-z0-9 ] are left unescaped


def context(debrief: Debrief, options: RenderOptions, **extra: Any) -> dict[str, Any]:
    """What every template gets: the debrief ``d``, the translator ``t``, the options, the
    executive summary's sentences and those comparing this drill with the previous one."""
    return {
        "d": debrief,
        "t": options.t,
        "options": options,
        "comparison_sentences": comparison_sentences(debrief, options.t),
        "executive": executive_paragraph(debrief, options.t),
        **extra,
    }


def _globals(env: Environment) -> Environment:
    env.globals.update(
        party_steps=party_steps,
        verdict=verdict,
        verdict_css=verdict_css,
        fault_status=fault_status,
        days=days,
        objective_note=objective_note,
        follow_up_measure=follow_up_measure,
    )
    return env


def _compiled_templates(flavour: str) -> FileSystemBytecodeCache:
    """Compiled templates kept between processes, in Jinja2's per-user cache folder (mode
    0700); one file name pattern per environment, whose options change the compiled code.
    Compiling the debrief's templates costs a drill ~0.3 s, loading them ~1 ms."""
    return FileSystemBytecodeCache(pattern=f"__bcdrill_{flavour}_%s.cache")


@cache
def markdown_env() -> Environment:
    """Jinja2 for Markdown: no HTML autoescaping (cells go through ``md``), strict undefined."""
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        bytecode_cache=_compiled_templates("md"),
        autoescape=False,  # noqa: S701 - Markdown, not HTML: table cells go through ``md``
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_cell
    return _globals(env)


@cache
def html_env() -> Environment:
    """Jinja2 for HTML: autoescape on, strict undefined."""
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        bytecode_cache=_compiled_templates("html"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["css_string"] = css_string
    return _globals(env)
