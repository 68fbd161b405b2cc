"""The CI job summary: a short Markdown page for ``$GITHUB_STEP_SUMMARY`` (or ``--summary FILE``).

The headline (outcome, score, rating), the executive summary, each side's steps against their
targets and the findings — what a reviewer reads on the pipeline page without opening the
debrief. Written beside the debrief as ``summary.md``; ``bcdrill run`` appends it to the file
the CI names.
"""

from __future__ import annotations

from reports.debrief.model import Debrief
from reports.renderers.common import RenderOptions, executive_paragraph, md_cell

__all__ = ["render"]


def render(debrief: Debrief, options: RenderOptions) -> str:
    """The job summary as GitHub/GitLab-flavoured Markdown."""
    t = options.t
    lines = [
        f"## {md_cell(t('ci.title', title=debrief.playbook.title))}",
        "",
        t(
            "ci.headline",
            outcome=t(f"outcome.{debrief.outcome}"),
            score=debrief.score,
            rating=debrief.rating,
            run=debrief.run_id,
        ),
        "",
        md_cell(executive_paragraph(debrief, t)),
        "",
        f"| {t('col.party')} | {t('col.step')} | {t('col.target')} | {t('col.actual')} | {t('col.status')} |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for step in debrief.steps:
        party = t(f"party.{step.party}") if step.party in ("msp", "client") else step.party
        lines.append(
            f"| {party} | {md_cell(step.title)} | {t.duration(step.target_s)} | "
            f"{t.duration(step.actual_s)} | {t(f'status.{step.status}')} |"
        )
    if debrief.findings:
        lines.append("")
        for finding in debrief.findings:
            title = md_cell(t.message(finding.title_msg, finding.title))
            lines.append(f"- **{finding.id}** ({t(f'severity.{finding.severity}')}): {title}")
    return "\n".join(lines) + "\n"
