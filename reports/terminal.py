"""A compact scorecard for the terminal (rich), printed at the end of ``bcdrill run``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from reports.model import Debrief
from reports.renderers.common import (
    PARTY_NAMES,
    STATUS_NAMES,
    fmt_duration,
    fmt_score,
    fmt_verdict,
)

OUTCOME_STYLES = {"passed": "bold green", "failed": "bold red", "aborted": "bold yellow"}
STATUS_STYLES = {"on_time": "green", "late": "yellow", "missed": "red", "not_exercised": "dim"}


def _steps_table(debrief: Debrief) -> Table:
    table = Table(title="Response steps", title_justify="left", expand=False)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("Party", "left"), ("Step", "left"), ("Target", "right"), ("Actual", "right"),
        ("Status", "left"), ("Score", "right"),
    )
    for column, justify in columns:
        table.add_column(column, justify=justify)
    for step in debrief.steps:
        status = Text(STATUS_NAMES[step.status], style=STATUS_STYLES[step.status])
        table.add_row(
            PARTY_NAMES.get(step.party, step.party),
            Text(step.title),  # Text, not markup: titles come from playbooks
            fmt_duration(step.target_s),
            fmt_duration(step.actual_s),
            status,
            fmt_score(step.score),
        )
    return table


def _headline(debrief: Debrief) -> Text:
    text = Text()
    text.append(f"{debrief.outcome.upper()}", style=OUTCOME_STYLES[debrief.outcome])
    text.append(f"  score {fmt_score(debrief.score)} ({debrief.rating or '-'})")
    for name in ("msp", "client"):
        party = getattr(debrief.parties, name)
        text.append(f"  {PARTY_NAMES[name]} {fmt_score(party.score)} ({party.rating or '-'})")
    rto = debrief.objectives.rto
    text.append(
        f"  RTO {fmt_duration(rto.actual_s)} / {fmt_duration(rto.target_s)} {fmt_verdict(rto)}"
    )
    return text


def print_scorecard(debrief: Debrief | Mapping[str, Any], console: Console) -> None:
    """Print the outcome, scores, steps and findings of ``debrief`` to ``console``.

    ``debrief`` may be the model or its JSON form (what the engine's debriefer returns);
    registered as the ``terminal`` entry point of ``bcdrill.scorecards``.
    """
    if not isinstance(debrief, Debrief):
        debrief = Debrief.from_json(debrief)
    console.print(Text(f"Drill debrief: {debrief.playbook.title}", style="bold"))
    console.print(Text(f"run {debrief.run_id} · {debrief.client} · {debrief.environment.name}"))
    console.print(_headline(debrief))
    console.print(_steps_table(debrief))
    for finding in debrief.findings:
        line = Text(f"{finding.id} [{finding.severity}] ", style="bold")
        line.append(f"{finding.title}: {finding.evidence}")
        console.print(line)
    if debrief.resolution_s is not None:
        console.print(Text(f"times accurate to ±{fmt_duration(debrief.resolution_s)}", "dim"))
