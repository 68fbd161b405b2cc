"""A debrief's verdicts and executive summary in the reader's language, as plain text.

Shared by the terminal scorecard (:mod:`reports.terminal`) and the renderers; kept out of
:mod:`reports.renderers` so that printing a scorecard at the end of ``bcdrill run`` loads no
template engine and no renderer.
"""

from __future__ import annotations

from reports.debrief.executive import executive_summary
from reports.debrief.model import Debrief, ObjectiveResult
from reports.i18n import Translator

__all__ = ["executive_paragraph", "verdict"]


def verdict(t: Translator, objective: ObjectiveResult) -> str:
    """An objective's verdict in words: met, missed, not measured, or no target."""
    if objective.met is not None:
        return t("verdict.met") if objective.met else t("verdict.missed")
    if objective.target_s is None and objective.actual_s is not None:
        return t("verdict.no_target")
    return t("verdict.not_measured")


def executive_paragraph(debrief: Debrief, t: Translator) -> str:
    """The executive summary as one paragraph in ``t``'s language (Chinese joins without spaces)."""
    separator = "" if t.lang.startswith("zh") else " "
    return separator.join(t.message(m) for m in executive_summary(debrief, t.lang))
