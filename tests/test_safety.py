"""Safety paths on real containers (in-process drills, no Prefect needed): watchdog,
safeguard probe, failing revert, unwritable journal, foreign state, dry-run plan."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from engine.errors import JournalError
from engine.plugins import resolve_parts
from engine.record.runstore import create_run_dir, new_run_id
from engine.run.runner import DrillRun, RunOptions, RunResult
from engine.spec.loader import load_environment, load_playbook
from tests.conftest import LAB_NAME, REPO, run_cli
from tests.journal_helpers import first, types

pytestmark = pytest.mark.docker
DATA = REPO / "tests" / "data"


def _run(name: str, lab_env: Path, runs: Path, **options: Any) -> RunResult:
    playbook = load_playbook(DATA / f"{name}.yaml")
    run_dir = create_run_dir(new_run_id(playbook.id), runs)
    options_ = RunOptions(responders="manual", **options)
    drill = DrillRun(playbook, load_environment(lab_env), run_dir, options_, resolve_parts("manual", False))
    return drill.execute()


def _census() -> dict[str, Any]:
    client = docker.from_env()
    return {
        c.name: (c.attrs["State"]["Running"], c.attrs["State"]["Paused"], c.attrs["Config"]["Labels"])
        for c in client.containers.list(all=True)
    }


@pytest.fixture
def foreign(lab_env: Path) -> Iterator[Any]:
    """A container that is not part of any drill: it must be byte-identical afterwards."""
    from engine import lab

    container = docker.from_env().containers.run(
        lab.IMAGE, ["sleep", "600"], name="someone-elses-container", detach=True
    )
    yield container
    container.remove(force=True)


def test_max_duration_watchdog_aborts_and_reverts(lab_env: Path, tmp_path: Path, foreign: Any) -> None:
    before = _census()
    result = _run("watchdog", lab_env, tmp_path)
    assert result.exit_code == 3
    aborted = first(result.run_dir, "run.aborted")["data"]
    assert aborted["by"] == "watchdog" and "max_duration" in aborted["reason"]
    applied = first(result.run_dir, "fault.applied")["t"]
    assert first(result.run_dir, "run.aborted")["t"] - applied < 1.5 + 0.5
    assert first(result.run_dir, "fault.reverted")["data"]["verified"] is True
    assert result.debrief is not None and result.debrief["outcome"] == "void"  # a safety stop blames nobody
    assert _census() == before  # drill containers running again; the foreign one untouched


def test_safeguard_probe_aborts_and_reverts_everything(lab_env: Path, tmp_path: Path) -> None:
    before = _census()
    result = _run("safeguard", lab_env, tmp_path)
    assert result.exit_code == 3
    aborted = first(result.run_dir, "run.aborted")["data"]
    assert aborted["by"] == "safeguard" and "'api'" in aborted["reason"]
    kinds = types(result.run_dir)
    assert kinds.count("fault.reverted") == 2 and "restore.verified" in kinds
    # reverts run last-in-first-out: the API first, then the storefront
    reverted = [r for r in _records(result.run_dir) if r["type"] == "fault.reverted"]
    assert [r["data"]["fault"] for r in reverted] == ["freeze-api", "stop-web"]
    assert _census() == before


def test_a_failing_revert_does_not_stop_the_others(lab_env: Path, tmp_path: Path) -> None:
    result = _run("failing-revert", lab_env, tmp_path)
    assert result.exit_code == 5
    assert result.unreverted == ("marker",)
    failed = first(result.run_dir, "fault.revert_failed")["data"]
    assert failed["fault"] == "marker" and "exit 3" in failed["manual"]
    assert failed["manual"].startswith("docker exec ")
    assert first(result.run_dir, "fault.reverted", fault="stop-web")["data"]["verified"] is True
    container = docker.from_env().containers.get(f"bcdrill-{LAB_NAME}-storefront")
    assert container.attrs["State"]["Running"]
    docker.from_env().containers.get(f"bcdrill-{LAB_NAME}-api").exec_run(["rm", "-f", "/tmp/marker"])


def test_unwritable_journal_means_nothing_is_injected(lab_env: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)], check=True)
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={full}/filler", "bs=4k", "count=64"], capture_output=True)
        before = _census()
        with pytest.raises(JournalError):
            _run("watchdog", lab_env, full)
        assert _census() == before
    finally:
        subprocess.run(["umount", str(full)], check=True)


def test_plan_changes_nothing_and_shows_the_targets_run_hits(lab_env: Path, tmp_path: Path) -> None:
    before = _census()
    result = run_cli("plan", str(DATA / "two-faults.yaml"), "--env", str(lab_env))
    assert result.returncode == 0, result.stderr
    assert _census() == before
    assert f"bcdrill-{LAB_NAME}-storefront" in result.stdout and f"bcdrill-{LAB_NAME}-api" in result.stdout
    assert "docker stop" in result.stdout and "docker unpause" in result.stdout
    assert "preflight would pass" in result.stdout
    ran = _run("two-faults", lab_env, tmp_path / "runs")
    targets = {t["label"] for t in first(ran.run_dir, "preflight.passed")["data"]["targets"]}
    assert targets == {f"bcdrill-{LAB_NAME}-storefront", f"bcdrill-{LAB_NAME}-api"}


def _records(run_dir: Path) -> list[dict[str, Any]]:
    from tests.journal_helpers import records

    return records(run_dir)
