"""The shell composes a run: required plugins are resolved up front, and a missing or failing
debriefer can never let a drill pass silently (a real drill on the lab, no Prefect needed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from engine.errors import MissingPluginError
from engine.plugins import DEBRIEFERS, RESPONDERS, SERVICES, required, resolve_parts
from engine.record.runstore import create_run_dir, new_run_id
from engine.run.parts import RunParts
from engine.run.runner import DrillRun, RunOptions
from engine.spec.loader import load_environment, load_playbook
from tests.conftest import REPO, run_cli
from tests.journal_helpers import types

DATA = REPO / "tests" / "data"


def test_parts_follow_the_run_options() -> None:
    auto = resolve_parts("auto", desk=False)
    assert auto.debriefer is DEBRIEFERS.get("standard") and auto.services == ()
    assert auto.responders is RESPONDERS.get("runbook")  # CI performs the runbook for real
    assert resolve_parts("manual", desk=False).responders is None
    people = resolve_parts("simulate", desk=True)
    assert people.services == (SERVICES.get("desk"),) and people.responders is RESPONDERS.get("simulate")


def test_a_missing_required_plugin_is_refused_with_its_name() -> None:
    with pytest.raises(MissingPluginError) as caught:
        required(DEBRIEFERS, "nosuch")
    assert caught.value.exit_code == 4
    assert "debriefer 'nosuch'" in str(caught.value) and "bcdrill.debriefers" in str(caught.value)


@pytest.mark.docker
def test_an_unloadable_debriefer_exits_4_before_anything_starts(lab_env: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    result = run_cli(
        "run", str(DATA / "watchdog.yaml"), "--env", str(lab_env), "--responders", "auto",
        "--debriefer", "nosuch", "--runs", str(runs),
    )  # fmt: skip
    assert result.returncode == 4, result.stderr
    assert "debriefer 'nosuch'" in result.stderr and "Traceback" not in result.stderr
    assert not runs.exists() or not any(runs.iterdir())  # nothing was started, nothing injected


@pytest.mark.docker
def test_a_failing_debriefer_fails_the_run_instead_of_passing_it(lab_env: Path, tmp_path: Path) -> None:
    def broken(run_dir: Path) -> Mapping[str, Any]:
        raise RuntimeError("renderer crashed")

    playbook = load_playbook(DATA / "watchdog.yaml")
    run_dir = create_run_dir(new_run_id(playbook.id), tmp_path)
    options = RunOptions(responders="auto", time_scale=0.5)
    result = DrillRun(playbook, load_environment(lab_env), run_dir, options, RunParts(broken)).execute()
    assert result.exit_code == 4 and result.outcome == "failed"
    assert "debrief could not be written" in result.reason and "renderer crashed" in result.reason
    assert "fault.reverted" in types(run_dir)  # the fault was still reverted
