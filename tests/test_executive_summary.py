"""The executive summary: golden paragraphs in en and zh-CN for a passed, a failed and an
aborted (no-verdict) drill; a time-scaled run's figures at real scale and labelled; the
summary at the top of every format."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from reports.debrief.compose import Debrief, debrief_from_journal
from reports.debrief.executive import executive_summary, production_impact
from reports.debrief.language import for_language
from reports.i18n import translator
from reports.renderers import RenderOptions, render, render_text
from reports.renderers.common import executive_paragraph
from reports.terminal import print_scorecard
from reports.testing import ScriptedRun, step

GOLDEN = Path(__file__).parent / "golden" / "executive"
UPDATE = os.environ.get("BCDRILL_UPDATE_GOLDEN") == "1"
STEPS = (
    step("msp", "acknowledge", 300, title="Acknowledge the alert"),
    step("msp", "restore", 1500, title="Restore the service", recorded_by="probe", probe="web", state="up"),
    step("client", "report", 600, title="Report through the service desk"),
)
IMPACT = (25, 3000.0, "CNY")
CHINESE = {
    "zh-CN": {
        "title": "网店网页服务器宕机",
        "name:web": "网店",
        "step:msp.acknowledge": "确认告警",
        "step:msp.restore": "恢复服务",
        "step:client.report": "通过服务台报告",
    }
}


def passed_run(run_dir: Path, time_scale: float = 1.0) -> Debrief:
    """Every step on time, recovered in 16 minutes against a 30-minute RTO."""
    s = time_scale
    run = ScriptedRun(run_dir)
    run.start(steps=STEPS, rto_s=1800.0 * s, impact=IMPACT, time_scale=s, translations=CHINESE)
    run.at(1 * s).probe("web", "up").at(10 * s).inject("stop-web")
    run.at(11 * s).probe("web", "down").at(130 * s).step("msp.acknowledge").at(400 * s).step("client.report")
    run.at(970 * s).revert("stop-web").probe("web", "up").step("msp.restore", by="probe", source="probe")
    return debrief_from_journal(run.at(980 * s).end().path)


def failed_run(run_dir: Path) -> Debrief:
    """The client reports late and the service comes back after the RTO."""
    run = ScriptedRun(run_dir)
    run.start(steps=STEPS, rto_s=900.0, impact=IMPACT, translations=CHINESE)
    run.at(1).probe("web", "up").at(10).inject("stop-web").at(11).probe("web", "down")
    run.at(130).step("msp.acknowledge").at(1210).step("client.report")
    run.at(1400).revert("stop-web").probe("web", "up").step("msp.restore", by="probe", source="probe")
    return debrief_from_journal(run.at(1410).end().path)


def aborted_run(run_dir: Path) -> Debrief:
    """Stopped by a safety rule five minutes in: not a verdict on either team."""
    run = ScriptedRun(run_dir)
    run.start(steps=STEPS, rto_s=1800.0, impact=IMPACT, translations=CHINESE)
    run.at(1).probe("web", "up").at(10).inject("stop-web").at(11).probe("web", "down")
    run.at(130).step("msp.acknowledge")
    run.at(310).record("run.aborted", reason="a real incident was declared", by="controller")
    run.at(311).revert("stop-web").probe("web", "up")
    return debrief_from_journal(run.at(312).end("aborted").path)


RUNS = {"passed": passed_run, "failed": failed_run, "void": aborted_run}


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
@pytest.mark.parametrize("kind", sorted(RUNS))
def test_summary_matches_golden(tmp_path: Path, kind: str, lang: str) -> None:
    debrief = RUNS[kind](tmp_path)
    assert debrief.outcome == kind
    text = executive_paragraph(for_language(debrief, lang), translator(lang)) + "\n"  # as rendered
    path = GOLDEN / f"{kind}.{lang}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{path.name} differs (BCDRILL_UPDATE_GOLDEN=1)"


def test_passed_summary_names_outage_people_cost_and_targets(tmp_path: Path) -> None:
    text = executive_paragraph(passed_run(tmp_path), translator("en"))
    assert "Service “web” was unavailable for 16m00s" in text
    assert "25 staff were affected: 6.67 person-hours lost, about 800.00 CNY had this been production" in text
    assert "Both teams met every response target." in text
    assert "time-compressed" not in text


def test_failed_summary_counts_targets_per_side_and_the_missed_rto(tmp_path: Path) -> None:
    text = executive_paragraph(failed_run(tmp_path), translator("en"))
    assert "the client met 0 of 1" in text
    assert "later than the recovery time objective (23m10s against 15m00s)" in text
    assert "did not pass" in text


def test_a_drill_aborted_before_its_end_is_void_and_blames_nobody(tmp_path: Path) -> None:
    keys = [m.key for m in executive_summary(aborted_run(tmp_path))]
    assert "exec.outcome.void" in keys
    assert not any(k.startswith("exec.outcome.failed") for k in keys)


def test_scaled_run_reports_real_scale_and_says_so(tmp_path: Path) -> None:
    scaled = passed_run(tmp_path / "scaled", time_scale=0.01)
    real = passed_run(tmp_path / "real")
    assert scaled.impact.person_hours < 0.1  # what the run itself measured: scaled time
    assert production_impact(scaled.impact, scaled.time_scale).person_hours == pytest.approx(
        real.impact.person_hours, abs=0.02
    )
    text = executive_paragraph(scaled, translator("en"))
    assert "6.67 person-hours" in text or "6.66 person-hours" in text or "6.68 person-hours" in text
    assert "scaled back to real scenario time" in text
    assert "缩" in executive_paragraph(scaled, translator("zh-CN"))


@pytest.mark.parametrize("audience", ["client", "internal"])
@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_summary_heads_every_text_format(tmp_path: Path, lang: str, audience: str) -> None:
    debrief = passed_run(tmp_path)
    paragraph = executive_paragraph(for_language(debrief, lang), translator(lang))
    options = RenderOptions(lang=lang, audience=audience)  # type: ignore[arg-type]
    markdown = render_text(debrief, "md", options)
    assert markdown.splitlines()[2].endswith(paragraph)
    html = render_text(debrief, "html", options)
    assert html.index('class="executive"') < html.index('class="cards"')
    assert paragraph.split("。")[0].split(".")[0] in html


def test_json_carries_keys_values_and_english_text(tmp_path: Path) -> None:
    document = json.loads(render(passed_run(tmp_path), "json"))
    keys = [item["key"] for item in document["executive_summary"]]
    assert keys[0] == "exec.outage.recovered"
    assert document["executive_summary"][0]["text"].startswith("Service “web” was unavailable")
    assert Debrief.from_json(document).run_id == document["run_id"]  # still a v1 debrief


def test_terminal_prints_the_summary(tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    print_scorecard(passed_run(tmp_path), console, lang="zh-CN")
    assert "双方团队均达成了全部响应目标" in console.export_text()


def test_one_rounding_for_person_hours(tmp_path: Path) -> None:
    """The debrief model holds person-hours rounded once; its JSON (read by the trend) agrees."""
    debrief = failed_run(tmp_path)
    document = json.loads(render(debrief, "json"))
    assert document["impact"]["person_hours"] == debrief.impact.person_hours
    assert f"{debrief.impact.person_hours:.2f}" in render_text(debrief, "md")
