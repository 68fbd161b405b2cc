"""A fault over a multi-member target may hit only some members, drawn with the run's seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.model.selection import select_members
from engine.model.types import FaultSpec
from engine.plugins import resolve_parts
from engine.record.runstore import create_run_dir, new_run_id
from engine.run.runner import DrillRun, RunOptions
from engine.spec.loader import load_environment, load_playbook
from tests.conftest import REPO, run_cli
from tests.journal_helpers import first, records

PLAYBOOK = REPO / "tests" / "data" / "select-one-host.yaml"
MEMBERS = tuple(f"h{i}" for i in range(10))


def _spec(count: int | None = None, percent: float | None = None) -> FaultSpec:
    return FaultSpec(
        "f", "host.command", "hosts", 0.0, None, None, select_count=count, select_percent=percent
    )


def test_selection_is_reproducible_sized_and_ordered() -> None:
    picked = select_members(_spec(count=3), MEMBERS, seed=42)
    assert len(picked) == 3 and picked == select_members(_spec(count=3), MEMBERS, seed=42)
    assert list(picked) == sorted(picked, key=MEMBERS.index)  # member order is kept
    assert len(select_members(_spec(percent=25), MEMBERS, seed=1)) == 3  # 2.5 rounded up
    assert len(select_members(_spec(count=50), MEMBERS, seed=1)) == 10
    assert select_members(_spec(count=1), MEMBERS, seed=None) == MEMBERS  # dry run: candidates
    draws = {select_members(_spec(count=1), MEMBERS, seed=s) for s in range(200)}
    assert len(draws) == 10  # every member can be chosen


@pytest.mark.ssh
def test_only_the_selected_host_is_hit_and_recorded(lab_env: Path, tmp_path: Path) -> None:
    playbook, environment = load_playbook(PLAYBOOK), load_environment(lab_env)
    seed = 5
    expected = select_members(playbook.faults[0], environment.targets["hosts"].refs, seed)
    assert len(expected) == 1
    run_dir = create_run_dir(new_run_id(playbook.id), tmp_path)
    result = DrillRun(
        playbook, environment, run_dir, RunOptions(responders="auto", seed=seed), resolve_parts("auto", False)
    ).execute()
    assert result.exit_code in (0, 1), result.reason
    intents = [r for r in records(run_dir) if r["type"] == "fault.intent"]
    assert [r["data"]["target"]["ref"] for r in intents] == list(expected)
    assert intents[0]["data"]["fault"] == f"block-web@{expected[0]}"
    targets = first(run_dir, "preflight.passed")["data"]["targets"]
    assert [t["ref"] for t in targets] == list(expected)
    other = next(h for h in environment.targets["hosts"].refs if h != expected[0])
    downs = {
        r["data"]["probe"]
        for r in records(run_dir)
        if r["type"] == "probe.changed" and r["data"]["state"] == "down"
    }
    assert expected[0] in downs and other not in downs
    shown = run_cli("plan", str(PLAYBOOK), "--env", str(lab_env), "--seed", str(seed))
    assert f"block-web@{expected[0]} on" in shown.stdout and f"block-web@{other}" not in shown.stdout
