"""Light commands stay light: ``validate``, ``ack``, ``runs`` and ``report`` import neither Prefect
nor the Docker SDK (nor paramiko, nor WeasyPrint), and only the command plugin that owns the
command asked for is loaded. The lightest (``validate``, ``ack``, ``runner status``, ``runs``) import
neither structlog (its package pulls in rich tracebacks and asyncio) nor pydantic (typer's value
conversion, done by ``engine.command_plugins`` for plain values), and ``validate`` loads only the file
format it reads (not the drill plans' calendars).

Each command runs in its own real process; what it imported is read from ``sys.modules`` at exit.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.command_plugins import command_word
from tests.conftest import REPO
from tests.journal_helpers import finished_storefront_run

# Run the real entry point; at its exit, write the names of the modules it imported and how
# many objects it had frozen (an exit handler, so it also shows that those still run).
WRAPPER = """
import atexit, gc, json, sys
target = sys.argv[1]
exit_state = lambda: {"modules": sorted(sys.modules), "frozen": gc.get_freeze_count()}
atexit.register(lambda: json.dump(exit_state(), open(target, "w")))
sys.argv = ["bcdrill", *sys.argv[2:]]
from engine.cli import main
main()
"""
HEAVY = ("prefect", "docker", "weasyprint", "paramiko")
LEAN = ("structlog", "pydantic", "asyncio", "rich.traceback", "holidays", "drills")
PLUGIN_MODULES = ("reports.commands", "drills.desk.commands", "drills.programme.commands")


def at_exit(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run ``bcdrill ARGS`` in a fresh interpreter; its result and its state at exit."""
    target = tmp_path / "exit.json"
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(target), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "BCDRILL_PDF": "off"},
    )
    return result, json.loads(target.read_text())


def imported(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``bcdrill ARGS`` in a fresh interpreter; its result and the modules it imported."""
    result, state = at_exit(tmp_path, *args)
    return result, set(state["modules"])


def assert_light(modules: set[str], allowed_plugin: str | None = None) -> None:
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert not heavy, f"imported {heavy[:5]}"
    plugins = {m for m in PLUGIN_MODULES if m in modules}
    assert plugins <= ({allowed_plugin} if allowed_plugin else set()), plugins


def assert_lean(modules: set[str]) -> None:
    assert_light(modules)
    heavy = sorted(m for m in modules if m in LEAN or m.split(".")[0] in LEAN)
    assert not heavy, f"imported {heavy[:5]}"


@pytest.fixture
def finished_run(tmp_path: Path) -> Path:
    return finished_storefront_run(tmp_path / "runs", "20261129T000000Z-storefront-down-a1b2")


def test_validate_is_light(tmp_path: Path) -> None:
    result, modules = imported(tmp_path, "validate", str(REPO / "playbooks" / "storefront-down.yaml"))
    assert result.returncode == 0, result.stderr
    assert_lean(modules)
    assert not {m for m in modules if m.startswith(("engine.run.", "engine.record."))}  # no run parts


def test_runs_is_light(tmp_path: Path, finished_run: Path) -> None:
    (finished_run / "debrief.json").write_text(json.dumps({"class": "rehearsal", "outcome": "void"}))
    result, modules = imported(tmp_path, "runs", "--runs", str(finished_run.parent))
    assert result.returncode == 0, result.stderr
    assert finished_run.name[:20] in result.stdout
    assert "rehearsal" in result.stdout and "void" in result.stdout  # official or not, at a glance
    assert_lean(modules)


def test_report_loads_only_the_reports_plugin(tmp_path: Path, finished_run: Path) -> None:
    result, modules = imported(tmp_path, "report", str(finished_run), "--format", "md")
    assert result.returncode == 0, result.stderr
    assert "Acknowledge" in result.stdout
    assert_light(modules, allowed_plugin="reports.commands")


def test_ack_is_light(tmp_path: Path, finished_run: Path) -> None:
    (finished_run / "inbox").mkdir()
    owner = {"pid": os.getpid(), "host": socket.gethostname()}  # this test plays the live engine
    (finished_run / "owner.json").write_text(json.dumps(owner))
    args = ("ack", finished_run.name, "msp.declare", "--by", "Alex", "--runs", str(finished_run.parent))
    result, modules = imported(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert len(list((finished_run / "inbox").glob("*.json"))) == 1
    assert_lean(modules)
    assert not {m for m in modules if m.split(".")[0] == "rich"}  # plain lines: no rich console


def test_runner_status_is_light(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCDRILL_HOME", str(tmp_path / "home"))  # no runner there: exit 4
    result, modules = imported(tmp_path, "runner", "status")
    assert result.returncode == 4 and "no bcdrill runner" in result.stdout, result.stderr
    assert_lean(modules)


def test_help_still_lists_every_plugin_command(tmp_path: Path) -> None:
    result, modules = imported(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    for word in ("report", "watch", "schedule", "validate"):
        assert word in result.stdout
    assert set(PLUGIN_MODULES) <= modules


def test_command_word() -> None:
    assert command_word(["-v", "report", "x"]) == "report"
    assert command_word(["report", "--help"]) is None
    assert command_word([]) is None


def test_only_the_command_asked_for_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from engine import command_plugins
    from engine.command_plugins import load_command_plugins

    monkeypatch.setattr(command_plugins, "_load_all", lambda app, loaded: None)  # no plugin imports here

    def validate() -> None: ...

    def build() -> typer.Typer:
        app = typer.Typer()
        app.command()(validate)
        app.command("ack")(lambda: None)
        app.command("plan")(lambda: None)
        app.add_typer(typer.Typer(), name="runner")
        return app

    app = build()
    load_command_plugins(app, ["-v", "ack", "run-1"])
    assert [c.name for c in app.registered_commands] == ["ack"] and not app.registered_groups
    app = build()
    load_command_plugins(app, ["runner", "status"])
    assert not app.registered_commands and [g.name for g in app.registered_groups] == ["runner"]
    app = build()
    load_command_plugins(app, ["ack", "--help"])  # help shows the whole command line
    assert len(app.registered_commands) == 3 and len(app.registered_groups) == 1


def test_a_command_leaves_its_objects_to_the_exit_and_its_exit_handlers_still_run(tmp_path: Path) -> None:
    """The last collection of a command's interpreter would walk everything it imported (~0.2 s
    here): ``main`` freezes them, and the exit handlers (the wrapper's writes the count) still run."""
    result, state = at_exit(tmp_path, "validate", str(REPO / "playbooks" / "storefront-down.yaml"))
    assert result.returncode == 0, result.stderr
    assert state["frozen"] > 10_000
