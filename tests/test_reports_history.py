"""Improvements carried across drills, the comparison with the previous drill, trends."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from reports.commands import register
from reports.debrief.compose import debrief_from_journal
from reports.debrief.history import History, PlanItem, StoredPlan, follow_up, plan_of, verdict, with_history
from reports.debrief.model import Measure
from reports.debrief.summary import RunSummary
from reports.debrief.trend import build_trend, trend_chart, trend_html, trend_json
from reports.debrief.validation import debrief_errors
from reports.debrief_writer import ImprovementStore, client_slug, debrief_of_run
from reports.i18n import translator
from reports.renderers import RenderOptions, render_text
from reports.testing import ScriptedRun, sealed_debrief, step

STEPS = (
    step("msp", "acknowledge", 120, title="Acknowledge the alert"),
    step("msp", "restore", 720, title="Restore the service", recorded_by="probe", probe="web", state="up"),
    step("client", "report", 300, title="Report through the service desk"),
)


def drill(
    root: Path,
    run_id: str,
    start: datetime,
    ack: float | None,
    report: float,
    restore: float,
    client: str = "Acme Ltd",
    playbook: str = "web-down",
) -> ScriptedRun:
    """A drill of ``client``; ``ack`` None leaves the acknowledgement unrecorded."""
    run = ScriptedRun(root / run_id, start=start)
    started = _started(run_id, {"client": client, "playbook": playbook})
    run.record("run.started", **started).record("preflight.passed", targets=[], probes={})
    run.at(1).probe("web", "up").at(10).inject("stop-web").at(11).probe("web", "down")
    steps = [(report, "client.report")] + ([] if ack is None else [(ack, "msp.acknowledge")])
    for offset, key in sorted(steps):
        run.at(10 + offset).step(key)
    run.at(10 + restore).revert("stop-web").at(11 + restore).probe("web", "up")
    run.step("msp.restore", by="probe", source="probe")
    return run.at(20 + restore).end()


def _started(run_id: str, names: dict[str, str]) -> dict[str, object]:
    from reports.testing import run_started

    data = run_started(run_id=run_id, steps=STEPS, rto_s=480.0, impact=(40, 1200.0, "EUR"))
    data["environment"]["client"] = names["client"]
    data["playbook"]["id"] = names["playbook"]
    return data


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BCDRILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BCDRILL_RUNS", raising=False)
    return tmp_path / "home"


def test_next_drill_says_what_was_retested_and_how_it_went(tmp_path: Path, home: Path) -> None:
    runs = tmp_path / "runs"
    first = drill(
        runs,
        "20250303T090000Z-web-down-aaaa",
        datetime(2025, 3, 3, 9, tzinfo=UTC),
        ack=200,
        report=520,
        restore=700,
    )
    sealed_debrief(first.run_dir)
    stored = ImprovementStore("Acme Ltd").plans()
    assert [(i.finding, i.subject, i.baseline.status) for i in stored[0].items] == [
        ("F1", "objective:rto", "not_met"),
        ("F2", "step:msp.acknowledge", "late"),
        ("F3", "step:client.report", "late"),
    ]
    assert (home / "improvements" / "acme-ltd.json").exists()
    # a year later: the acknowledgement is never recorded (worse), the report on time
    # (improved), recovery still too slow but faster (improved, not yet met)
    second = drill(
        runs,
        "20260302T090000Z-web-down-bbbb",
        datetime(2026, 3, 2, 9, tzinfo=UTC),
        ack=None,
        report=250,
        restore=600,
    )
    result = sealed_debrief(second.run_dir)
    assert debrief_errors(result) == []
    results = {f["subject"]: (f["retested"], f["result"]) for f in result["follow_up"]}
    assert results == {
        "objective:rto": (True, "improved"),
        "step:msp.acknowledge": (True, "worse"),
        "step:client.report": (True, "improved"),
    }
    comparison = result["comparison"]
    assert comparison["previous_run"] == first.run_dir.name
    # computed from the person-hours as rounded once (7.79 → 6.68)
    assert comparison["person_hours_change_pct"] == pytest.approx((601 - 701) / 701 * 100, abs=0.05)
    text = (second.run_dir / "debrief.md").read_text()
    assert "Productivity time lost fell 14 % year on year (7.79 → 6.68 person-hours)." in text
    assert "| F2 of 2025-03-03 | MSP |" in text and "| late, 3m20s | missed | worse |" in text
    # re-tested items are closed; the second drill's own findings are the new open items
    third = drill(
        runs,
        "20260901T090000Z-web-down-cccc",
        datetime(2026, 9, 1, 9, tzinfo=UTC),
        ack=60,
        report=60,
        restore=100,
    )
    again = sealed_debrief(third.run_dir)
    assert [f["from_run"] for f in again["follow_up"]] == [second.run_dir.name] * 2
    assert {f["result"] for f in again["follow_up"]} == {"improved"}
    zh = render_text(debrief_of_run(third.run_dir), "md", RenderOptions(lang="zh-CN"))
    assert "与 2026年3月2日 的上次演练相比，生产力损失时间减少了 83%" in zh
    assert "有改善" in zh


def test_items_not_retested_stay_open_across_other_scenarios(tmp_path: Path, home: Path) -> None:
    runs = tmp_path / "runs"
    first = drill(
        runs,
        "20250101T090000Z-web-down-aaaa",
        datetime(2025, 1, 1, tzinfo=UTC),
        ack=200,
        report=100,
        restore=300,
    )
    sealed_debrief(first.run_dir)
    base = debrief_from_journal(first.path)
    plans = (plan_of(base),)
    other = debrief_from_journal(
        drill(
            runs,
            "20250601T090000Z-db-down-bbbb",
            datetime(2025, 6, 1, tzinfo=UTC),
            ack=None,
            report=100,
            restore=100,
            playbook="db-down",
        ).path
    )
    # an item whose subject this drill does not contain is not re-tested and stays open
    shifted = StoredPlan(
        "r0",
        "x",
        "2024-01-01T00:00:00Z",
        (
            PlanItem(
                "F9", "step:client.escalate", "client", "Escalate", None, 14, Measure("missed", None, 0.0)
            ),
        ),
        (),
    )
    items = follow_up(other, (*plans, shifted))
    by_subject = {i.subject: i for i in items}
    assert by_subject["step:client.escalate"].retested is False
    assert by_subject["step:client.escalate"].result == "not_retested"
    assert by_subject["step:msp.acknowledge"].result == "worse"  # late (66.7) → missed (0)
    assert with_history(other, History()).follow_up == ()


def test_the_debrief_is_a_pure_function_of_journal_and_history(tmp_path: Path, home: Path) -> None:
    runs = tmp_path / "runs"
    first = drill(
        runs,
        "20250303T090000Z-web-down-aaaa",
        datetime(2025, 3, 3, tzinfo=UTC),
        ack=200,
        report=520,
        restore=700,
    )
    second = drill(
        runs,
        "20260302T090000Z-web-down-bbbb",
        datetime(2026, 3, 2, tzinfo=UTC),
        ack=100,
        report=250,
        restore=400,
    )
    history = History(
        plans=(plan_of(debrief_from_journal(first.path)),),
        previous=RunSummary.of(debrief_from_journal(first.path)),
    )
    one = debrief_from_journal(second.path, history)
    two = debrief_from_journal(second.path, history)
    assert one.dumps() == two.dumps()
    assert len(one.follow_up) == 3 and one.comparison is not None
    assert debrief_from_journal(second.path).follow_up == ()
    assert not (home / "improvements").exists()  # nothing was written


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (Measure("late", 200.0, 66.7), Measure("on_time", 90.0, 100.0), "improved"),
        (Measure("late", 200.0, 66.7), Measure("late", 200.0, 66.7), "same"),
        (Measure("late", 200.0, 66.7), Measure("missed", None, 0.0), "worse"),
        (Measure("not_met", 700.0, None), Measure("met", 300.0, None), "improved"),
        (Measure("not_met", None, None), Measure("not_met", 900.0, None), "improved"),
        (Measure("not_met", 600.0, None), Measure("not_met", 900.0, None), "worse"),
        (Measure("occurred", None, None), Measure("absent", None, None), "improved"),
        (Measure("occurred", None, None), Measure("occurred", None, None), "same"),
        (Measure("late", 200.0, 66.7), None, "not_retested"),
    ],
)
def test_verdicts(before: Measure, after: Measure | None, expected: str) -> None:
    assert verdict(before, after) == expected


def test_client_slugs_are_file_safe_and_distinct() -> None:
    assert client_slug("Acme Ltd") == "acme-ltd"
    assert client_slug("上海贸易") != client_slug("上海物流")
    assert client_slug("上海贸易").startswith("client-")
    assert "/" not in client_slug("../../etc/passwd")


# ------------------------------------------------------------------ trends


def _summaries(count: int) -> list[RunSummary]:
    base = RunSummary(
        "",
        "Acme Ltd",
        "web-down",
        "Storefront web server dies",
        "lab",
        "",
        "passed",
        0.0,
        "P",
        0.0,
        0.0,
        480.0,
        300.0,
        True,
        300.0,
        3.3,
        100.0,
        "EUR",
        0,
        "drill",
    )
    from dataclasses import replace

    return [
        replace(
            base,
            run_id=f"run-{i:04d}",
            started_at=f"{2020 + i // 365:04d}-01-01T00:00:{i % 60:02d}Z",
            score=float(i % 101),
            outcome="passed" if i % 3 else "failed",
            client="Acme Ltd" if i % 4 else "Other Co",
        )
        for i in range(count)
    ]


def test_trend_keeps_only_the_clients_runs_in_time_order() -> None:
    trend = build_trend(reversed(_summaries(40)), "ACME  ltd")
    assert trend.client == "Acme Ltd"
    assert len(trend.points) == 30
    assert [p.order for p in trend.points] == sorted(p.order for p in trend.points)
    document = json.loads(trend_json(trend))
    assert document["format"] == "bcdrill/trend/v1" and len(document["runs"]) == 30


def test_trend_html_draws_one_dot_per_drill_and_escapes(tmp_path: Path) -> None:
    from dataclasses import replace

    points = [replace(s, playbook_title="<b>x</b>") for s in _summaries(8)]
    trend = build_trend(points, "Acme Ltd")
    html = trend_html(trend, translator("zh-CN"))
    assert html.count("<circle ") == 4 * len(trend.points) == 4 * 6  # score, outage, hours, cost
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "演练趋势" in html
    chart = trend_chart(trend, translator("en"))
    assert len(chart.line.split()) == 6


def test_trend_command_over_a_run_store(tmp_path: Path, home: Path) -> None:
    runs = tmp_path / "runs"
    for index, (ack, start) in enumerate(
        [(200, datetime(2025, 3, 3, tzinfo=UTC)), (60, datetime(2026, 3, 2, tzinfo=UTC))]
    ):
        sealed_debrief(
            drill(
                runs, f"2026030{index}T090000Z-web-down-{index:04d}", start, ack=ack, report=100, restore=200
            ).run_dir
        )
    sealed_debrief(
        drill(
            runs,
            "20260303T090000Z-web-down-zzzz",
            datetime(2026, 3, 3, tzinfo=UTC),
            ack=60,
            report=100,
            restore=200,
            client="Other Co",
        ).run_dir
    )
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    result = runner.invoke(app, ["trend", "--client", "Acme Ltd", "--runs", str(runs), "-f", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["runs"]
    assert [r["started_at"][:10] for r in rows] == ["2025-03-03", "2026-03-02"]
    table = runner.invoke(app, ["trend", "--client", "Acme Ltd", "--runs", str(runs)])
    assert table.exit_code == 0 and "Drill trend: Acme Ltd" in table.stdout
    assert "2025-03-03" in table.stdout and "Other" not in table.stdout
    bad = runner.invoke(app, ["trend", "--client", "Acme Ltd", "--runs", str(runs), "-f", "xml"])
    assert bad.exit_code == 2


def test_trend_over_a_thousand_generated_runs(tmp_path: Path, home: Path) -> None:
    from benchmarks.reports_bench import CLIENTS, generate
    from reports.debrief_writer import summaries

    generate(tmp_path, 1000)
    trend = build_trend(summaries(tmp_path / "runs"), "Acme Ltd")
    assert len(trend.points) == 1000 // len(CLIENTS)
    assert [p.order for p in trend.points] == sorted(p.order for p in trend.points)
    html = trend_html(trend, translator("en"))
    assert html.count("<circle ") == 4 * len(trend.points)
    chinese = build_trend(summaries(tmp_path / "runs"), "上海贸易有限公司")
    assert len(chinese.points) == 250 and chinese.client == "上海贸易有限公司"


def test_a_damaged_plan_file_does_not_cost_the_debrief(tmp_path: Path, home: Path) -> None:
    runs = tmp_path / "runs"
    (home / "improvements").mkdir(parents=True)
    (home / "improvements" / "acme-ltd.json").write_text("{not json")
    run = drill(
        runs,
        "20250303T090000Z-web-down-aaaa",
        datetime(2025, 3, 3, tzinfo=UTC),
        ack=200,
        report=520,
        restore=700,
    )
    result = sealed_debrief(run.run_dir)
    assert result["follow_up"] == [] and (run.run_dir / "debrief.html").exists()
    assert (home / "improvements" / "acme-ltd.json").read_text() == "{not json"  # left for a human


def test_report_command_options(tmp_path: Path, home: Path) -> None:
    runs = tmp_path / "runs"
    run = drill(
        runs,
        "20250303T090000Z-web-down-aaaa",
        datetime(2025, 3, 3, tzinfo=UTC),
        ack=200,
        report=520,
        restore=700,
    )
    app = typer.Typer()
    register(app)

    @app.command()
    def other() -> None:
        """Placeholder so that report is a subcommand."""

    runner = CliRunner()
    out = tmp_path / "d.pdf"
    ok = runner.invoke(
        app,
        [
            "report",
            str(run.run_dir),
            "-f",
            "pdf",
            "--lang",
            "zh-CN",
            "--tz",
            "Asia/Shanghai",
            "--audience",
            "client",
            "-o",
            str(out),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert out.read_bytes().startswith(b"%PDF-")
    md = runner.invoke(app, ["report", str(run.run_dir), "--lang", "zh-CN", "--tz", "Asia/Shanghai"])
    assert md.exit_code == 0 and "2025年3月3日 08:00:00（Asia/Shanghai）" in md.stdout
    for bad in (["--lang", "fr"], ["--tz", "Mars/Base"], ["--audience", "press"], ["-f", "docx"]):
        result = runner.invoke(app, ["report", str(run.run_dir), *bad])
        assert result.exit_code == 2, (bad, result.output)
