"""A compact scorecard for the terminal (rich), printed at the end of ``bcdrill run``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from reports.debrief.language import for_language
from reports.debrief.model import Debrief
from reports.debrief.wording import executive_paragraph, verdict
from reports.i18n import Translator, translator

OUTCOME_STYLES = {"passed": "bold green", "failed": "bold red", "aborted": "bold yellow", "void": "bold"}
STATUS_STYLES = {
    "on_time": "green",
    "late": "yellow",
    "missed": "red",
    "not_exercised": "dim",
    "not_reached": "dim",
}


def _steps_table(debrief: Debrief, t: Translator) -> Table:
    table = Table(title=t("terminal.steps"), title_justify="left", expand=False)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("col.party", "left"),
        ("col.step", "left"),
        ("col.target", "right"),
        ("col.actual", "right"),
        ("col.status", "left"),
        ("col.score", "right"),
    )
    for column, justify in columns:
        table.add_column(t(column), justify=justify)
    for step in debrief.steps:
        status = Text(t(f"status.{step.status}"), style=STATUS_STYLES[step.status])
        table.add_row(
            t(f"party.{step.party}") if step.party in ("msp", "client") else step.party,
            Text(step.title),  # Text, not markup: titles come from playbooks
            t.duration(step.target_s),
            t.duration(step.actual_s),
            status,
            t.score(step.score),
        )
    return table


def _headline(debrief: Debrief, t: Translator) -> Text:
    text = Text()
    text.append(t(f"outcome.{debrief.outcome}"), style=OUTCOME_STYLES[debrief.outcome])
    text.append(t("terminal.score", score=debrief.score, rating=debrief.rating or "-"))
    for name in ("msp", "client"):
        party = getattr(debrief.parties, name)
        text.append(t("terminal.party", party=name, score=party.score, rating=party.rating or "-"))
    rto = debrief.objectives.rto
    text.append(t("terminal.rto", actual=rto.actual_s, target=rto.target_s, verdict=verdict(t, rto)))
    return text


def print_scorecard(
    debrief: Debrief | Mapping[str, Any], console: Console, lang: str = "en", tz: str = "UTC"
) -> None:
    """Print the outcome, scores, steps and findings of ``debrief`` to ``console``.

    ``debrief`` may be the model or its JSON form (what the engine's debriefer returns);
    registered as the ``terminal`` entry point of ``bcdrill.scorecards``. The terminal is
    the operator's (MSP) view: findings are shown with their full evidence.
    """
    if not isinstance(debrief, Debrief):
        debrief = Debrief.from_json(debrief)
    debrief = for_language(debrief, lang)
    t = translator(lang, tz)
    console.print(Text(t("report.title", title=debrief.playbook.title), style="bold"))
    console.print(
        Text(
            t("terminal.run", run=debrief.run_id, client=debrief.client, environment=debrief.environment.name)
        )
    )
    console.print(Text(executive_paragraph(debrief, t)))
    console.print(_headline(debrief, t))
    if debrief.run_class != "drill":
        console.print(Text(t("banner.unofficial", kind=t(f"class.{debrief.run_class}")), style="bold"))
    if debrief.outcome == "void":
        console.print(Text(t("banner.void", reason=debrief.void_reason or ""), style="bold"))
    if debrief.evidence is not None and debrief.evidence.key_fingerprint:
        ev = debrief.evidence
        console.print(
            Text(t("evidence.signed", hash=ev.head_hash, records=ev.records, fingerprint=ev.key_fingerprint))
        )
    console.print(_steps_table(debrief, t))
    for finding in debrief.findings:
        severity = t(f"severity.{finding.severity}")
        line = Text(t("terminal.finding_id", id=finding.id, severity=severity), style="bold")
        line.append(
            t(
                "terminal.finding",
                title=t.message(finding.title_msg, finding.title),
                evidence=t.message(finding.evidence_msg, finding.evidence),
            )
        )
        console.print(line)
    if debrief.resolution_s is not None:
        console.print(Text(t("terminal.resolution", resolution=debrief.resolution_s), "dim"))
