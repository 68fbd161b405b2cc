"""Renderers: golden Markdown and JSON, HTML escaping and self-containment, JUnit structure."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from engine.errors import RegistrationError, UnknownPluginError
from reports.commands import register
from reports.debrief.compose import Debrief, debrief_from_journal
from reports.renderers import RENDERERS, render, render_text
from reports.terminal import print_scorecard
from reports.testing import ScriptedRun, run_started, step

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("BCDRILL_UPDATE_GOLDEN") == "1"

STEPS = (
    step("msp", "acknowledge", 120, title="Acknowledge the alert"),
    step("msp", "inform", 300, title="Inform the client | by phone"),
    step("msp", "restore", 720, title="Restore the service", recorded_by="probe", probe="web", state="up"),
    step("client", "report", 300, title="Report through the service desk"),
    step("client", "workaround", 600, title="Start manual order taking", weight=2.0),
)


def eventful_run(run_dir: Path, title: str = "Storefront web server dies") -> ScriptedRun:
    """A drill with an on-time, a late and a missed step, a missed RTO and a failed revert."""
    run = ScriptedRun(run_dir)
    run.start(
        steps=STEPS,
        title=title,
        rto_s=480.0,
        rpo_s=300.0,
        impact=(40, 1200.0, "EUR"),
        probes=(("web", 1.0), ("db", 2.0)),
        steady_state=("web",),
    )
    run.at(1).probe("web", "up").probe("db", "up")
    run.at(9).intend("stop-web@lab-web-1", target="lab-web-1")
    run.at(10).record("fault.applied", fault="stop-web@lab-web-1")
    run.at(10.2).intend("block-db", action="network.disconnect", target="lab-db")
    run.at(10.4).record("fault.applied", fault="block-db")
    run.at(11).probe("web", "down")
    run.at(100).step("msp.acknowledge", by="Alice (MSP)")
    run.at(520).step("client.report", by="Bob (Acme)", source="webhook")
    run.at(600).step("client.workaround", by="Bob (Acme)")
    run.at(610).revert("stop-web@lab-web-1")
    run.at(611.5).probe("web", "up").step("msp.restore", by="probe", source="probe")
    run.at(612).record(
        "fault.revert_failed",
        fault="block-db",
        error="network not found",
        manual="docker network connect lab lab-db",
    )
    return run.at(615).end()


@pytest.fixture
def debrief(tmp_path: Path) -> Debrief:
    return debrief_from_journal(eventful_run(tmp_path).path)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs (BCDRILL_UPDATE_GOLDEN=1)"


def test_markdown_matches_golden(debrief: Debrief) -> None:
    check_golden("eventful.md", render_text(debrief, "md"))


def test_json_matches_golden(debrief: Debrief) -> None:
    check_golden("eventful.json", render_text(debrief, "json"))


def test_golden_scenario_scores_as_intended(debrief: Debrief) -> None:
    assert [(s.id, s.status) for s in debrief.steps] == [
        ("acknowledge", "on_time"),
        ("inform", "missed"),
        ("restore", "on_time"),
        ("report", "late"),
        ("workaround", "on_time"),
    ]
    assert debrief.objectives.rto.met is False
    assert debrief.outcome == "failed"
    assert [f.severity for f in debrief.findings] == ["critical", "high", "high", "medium"]


def test_markdown_has_a_steps_table_per_party_and_escapes_cells(debrief: Debrief) -> None:
    text = render(debrief, "md")
    assert "## MSP steps" in text and "## Client steps" in text
    assert "| Inform the client \\| by phone | 5m00s | — | missed | 0.0 |" in text
    assert "| RTO (recovery time) | 8m00s | 10m02s | missed |" in text
    assert "| RPO (data loss) | 5m00s | — | not measured |" in text


def test_html_escapes_a_script_in_a_step_title(tmp_path: Path) -> None:
    title = '<script>alert("x")</script>'
    run = ScriptedRun(tmp_path)
    run.start(steps=(step("msp", "acknowledge", 100, title=title),), title=f"Drill {title}")
    run.at(1).probe("web", "up").at(10).inject("stop-web").at(20).step("msp.acknowledge")
    html = render_text(debrief_from_journal(run.at(30).revert("stop-web").at(31).end().path), "html")
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert html.count("&lt;script&gt;") >= 4  # title, heading, steps table, chart label/tooltip


def test_html_is_self_contained_with_an_inline_svg_timeline(debrief: Debrief) -> None:
    html = render_text(debrief, "html")
    assert html.startswith("<!DOCTYPE html>")
    for external in ("<link", "<script", "src=", "@import", "url("):
        assert external not in html
    svg = html[html.index("<svg") : html.index("</svg>") + 6]
    chart = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    classes = [r.get("class") for r in chart.iter(f"{ns}rect")]
    assert classes.count("fault") == 2
    assert {"up", "down", "window"} <= set(classes)
    dots = [c.get("class") for c in chart.iter(f"{ns}circle")]
    assert dots == ["on_time", "on_time", "late", "on_time"]  # inform was never recorded
    assert any(line.get("class") == "impact" for line in chart.iter(f"{ns}line"))


def test_junit_has_a_testcase_per_step_objective_and_revert(debrief: Debrief) -> None:
    root = ET.fromstring(render(debrief, "junit"))
    (suite,) = root.findall("testsuite")
    cases = {(c.get("classname"), c.get("name")): c for c in suite.findall("testcase")}
    assert list(cases) == [
        ("msp", "acknowledge: Acknowledge the alert"),
        ("msp", "inform: Inform the client | by phone"),
        ("msp", "restore: Restore the service"),
        ("client", "report: Report through the service desk"),
        ("client", "workaround: Start manual order taking"),
        ("objectives", "rto"),
        ("objectives", "rpo"),
        ("faults", "revert stop-web@lab-web-1"),
        ("faults", "revert block-db"),
        ("drill", "outcome"),
    ]
    failed = {key for key, case in cases.items() if case.find("failure") is not None}
    assert failed == {
        ("msp", "inform: Inform the client | by phone"),
        ("client", "report: Report through the service desk"),
        ("objectives", "rto"),
        ("faults", "revert block-db"),
        ("drill", "outcome"),
    }
    for key in failed:
        assert (cases[key].findtext("failure") or "").strip(), f"{key} has no failure body"
    assert "never recorded" in (
        cases[("msp", "inform: Inform the client | by phone")].findtext("failure") or ""
    )
    assert cases[("objectives", "rpo")].find("skipped") is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("10", "5", "1")
    assert cases[("msp", "acknowledge: Acknowledge the alert")].get("time") == "90.000"


def test_junit_survives_control_characters(tmp_path: Path) -> None:
    run = ScriptedRun(tmp_path)
    run.start(steps=(step("msp", "acknowledge", 100, title="bad\x07bell & <b>"),))
    run.at(1).probe("web", "up").at(10).inject("stop-web")
    xml = render(debrief_from_journal(run.at(30).revert("stop-web").end().path), "junit")
    case = ET.fromstring(xml).find("testsuite/testcase")
    assert case is not None
    assert case.get("name") == "acknowledge: bad\ufffdbell & <b>"


def test_registry_lists_builtins_and_rejects_mistakes(debrief: Debrief) -> None:
    assert {"md", "html", "json", "junit"} <= set(RENDERERS.names())
    with pytest.raises(UnknownPluginError, match="'docx'"):
        render(debrief, "docx")
    with pytest.raises(RegistrationError, match="already registered"):
        RENDERERS.register("md", lambda _debrief, _options: "")
    with pytest.raises(RegistrationError, match="not callable"):
        RENDERERS.register("broken", "not a function")  # type: ignore[arg-type]


def test_terminal_scorecard_prints_plain_text_titles(tmp_path: Path) -> None:
    run = ScriptedRun(tmp_path)
    run.start(steps=(step("msp", "acknowledge", 100, title="[bold]Ack[/bold]"),))
    run.at(1).probe("web", "up").at(10).inject("stop-web").at(250).step("msp.acknowledge")
    debrief = debrief_from_journal(run.at(260).revert("stop-web").end().path)
    console = Console(record=True, width=140, color_system=None)
    print_scorecard(debrief, console)
    text = console.export_text()
    assert "[bold]Ack[/bold]" in text
    assert "FAILED  score 30.0 (U)" in text
    assert "late" in text
    assert "F1 [medium] MSP step '[bold]Ack[/bold]' was late" in text


def test_report_command_renders_and_writes(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run_dir = runs / "20260302T090000Z-web-down-ab12"
    debrief = debrief_from_journal(eventful_run(run_dir).path)
    app = typer.Typer()
    register(app)

    @app.command()
    def other() -> None:  # a second command, so "report" is a subcommand as in bcdrill
        """Placeholder."""

    runner = CliRunner()
    result = runner.invoke(app, ["report", str(run_dir), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert result.stdout == render(debrief, "json")  # the v1 document and its executive summary
    out = tmp_path / "out.xml"
    result = runner.invoke(app, ["report", str(run_dir), "-f", "junit", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == render(debrief, "junit")
    for ref in ("latest", "20260302T09"):
        found = runner.invoke(app, ["report", ref, "--runs", str(runs), "-f", "md"])
        assert found.exit_code == 0, found.output
        assert found.stdout == render(debrief, "md")
    missing = runner.invoke(app, ["report", "nope", "--runs", str(runs)])
    assert missing.exit_code == 2
    assert "no run 'nope'" in missing.stderr
    unknown = runner.invoke(app, ["report", str(run_dir), "-f", "docx"])
    assert unknown.exit_code == 2


def test_terminal_scorecard_accepts_the_debrief_json(debrief: Debrief) -> None:
    console = Console(record=True, width=160, color_system=None)
    print_scorecard(debrief.to_json(), console)
    text = console.export_text()
    headline = "FAILED  score 77.5 (S)  MSP 66.6 (M)  Client 88.3 (S)  RTO 10m02s / 8m00s missed"
    assert headline in text
    assert "F1 [critical] Fault 'block-db' may still be in place" in text


def _preflight_failed(run: ScriptedRun) -> None:
    run.record("run.started", **run_started())
    run.at(1).record("preflight.failed", reason="probe 'web' is down").at(2).end()


def _auto_never_reverted(run: ScriptedRun) -> None:
    run.start(responders="auto")
    run.at(1).probe("web", "up").at(10).inject("stop-web").at(11).probe("web", "down")
    run.at(40).record("run.aborted", reason="aborted by carol: wrong client", by="carol")
    run.at(41).end("aborted")


@pytest.mark.parametrize("script", [_preflight_failed, _auto_never_reverted])
def test_every_renderer_handles_edge_runs(tmp_path: Path, script: Callable[[ScriptedRun], None]) -> None:
    run = ScriptedRun(tmp_path)
    script(run)
    debrief = debrief_from_journal(run.path)
    markdown = render(debrief, "md")
    assert f"**{debrief.outcome.upper()}**" in markdown
    html = render_text(debrief, "html")
    ET.fromstring(html[html.index("<svg") : html.index("</svg>") + 6])
    suite = ET.fromstring(render(debrief, "junit")).find("testsuite")
    assert suite is not None
    outcome = suite.find("testcase[@name='outcome']/failure")
    assert outcome is not None and outcome.get("type") == debrief.outcome


def test_compiled_templates_are_kept_for_the_next_process(debrief: Debrief) -> None:
    """Jinja2's bytecode cache: one file per template and environment, in a private folder."""
    from reports.renderers.common import html_env, markdown_env

    render(debrief, "md")
    render(debrief, "html")
    folders = set()
    for env, flavour in ((markdown_env(), "md"), (html_env(), "html")):
        cache = env.bytecode_cache
        assert cache is not None
        folder = Path(cache.directory)  # type: ignore[attr-defined]
        assert list(folder.glob(f"__bcdrill_{flavour}_*.cache")), f"no compiled {flavour} template kept"
        assert folder.stat().st_mode & 0o077 == 0, "the cache folder is private"
        folders.add(folder)
    assert len(folders) == 1  # one folder, told apart by the file names
