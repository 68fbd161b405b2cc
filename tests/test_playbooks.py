"""The scenario library, end to end: every playbook in ``playbooks/`` against the lab.

Each drill runs through the real CLI (``bcdrill run … --responders simulate --time-scale``)
against the session lab "ci" (real Docker, real sshd in namespaces) and the session Prefect
server. The assertions check the drill against the lab's ground truth, not only the
engine's own view: faults applied and reverted (verified), the steady state back, every step
scored, RTO no shorter than the time the fault was really in place, and RPO against the
lab's audit logs (every write the lab's writers ever made, never restored).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.lab.services import BACKUP_INTERVAL_S, WRITE_INTERVAL_S
from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.docker, pytest.mark.ssh, pytest.mark.prefect]

PLAYBOOKS = REPO / "playbooks"
# Time scale per playbook: the longest step target × 1.3 (the slowest simulated responder)
# lands at about 10–15 s of wall time.
SCALES = {
    "storefront-down": 0.005,
    "storefront-exercise": 0.005,
    "app-host-web-stop": 0.008,
    "orders-db-data-loss": 0.004,
    "db-network-partition": 0.006,
    "file-server-disk-full": 0.007,
    "ransomware-share": 0.004,
    "app-host-cpu-saturation": 0.007,
    "identity-down": 0.005,
    "whole-site-outage": 0.003,
}
SLACK_S = 0.5  # scheduling noise on a loaded 2-core machine


@dataclass(frozen=True)
class Drill:
    """A finished drill: exit code, journal records and debrief."""

    code: int
    output: str
    records: list[dict[str, Any]]
    debrief: dict[str, Any]

    def of(self, kind: str) -> list[dict[str, Any]]:
        """Records of one type."""
        return [r for r in self.records if r["type"] == kind]

    def epoch(self, record: dict[str, Any]) -> float:
        """A record's UTC time as unix seconds."""
        return datetime.fromisoformat(record["at"].replace("Z", "+00:00")).timestamp()


def run_drill(playbook_id: str, env: Path, runs: Path) -> Drill:
    """``bcdrill run`` the playbook with simulated responders; read what it left."""
    result = run_cli(
        "run",
        str(PLAYBOOKS / f"{playbook_id}.yaml"),
        "--env",
        str(env),
        "--runs",
        str(runs),
        "--responders",
        "simulate",
        "--seed",
        "7",
        "--time-scale",
        str(SCALES[playbook_id]),
        timeout=150,
    )
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    records = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    debrief = json.loads((run_dir / "debrief.json").read_text())
    return Drill(result.returncode, result.stdout + result.stderr, records, debrief)


def _library() -> list[Path]:
    """The playbooks (not their ``*.translations.yaml`` files)."""
    return [p for p in PLAYBOOKS.glob("*.yaml") if not p.name.endswith(".translations.yaml")]


def test_the_library_has_every_scenario_and_each_validates() -> None:
    files = sorted(p.stem for p in _library())
    assert files == sorted(SCALES), "every playbook needs a CI time scale here (and vice versa)"
    # --lang zh-CN: the shipped library is complete in Chinese too (title, summary, steps)
    result = run_cli("validate", "--lang", "zh-CN", *(str(PLAYBOOKS / f"{p}.yaml") for p in files))
    assert result.returncode == 0, result.stdout + result.stderr
    for path in _library():
        header = path.read_text().split("format:", 1)[0]
        assert "Story:" in header and "Expected response:" in header and "What it proves:" in header, path


@pytest.mark.parametrize("playbook_id", sorted(SCALES))
def test_playbook_runs_end_to_end_against_the_lab(
    playbook_id: str, lab_env: Path, prefect_api: str, tmp_path: Path
) -> None:
    drill = run_drill(playbook_id, lab_env, tmp_path)
    assert drill.code in (0, 1), drill.output[-3000:]  # passed, or scored below a target

    # Every fault was applied, then reverted and verified; nothing failed to revert.
    intents = {r["data"]["fault"] for r in drill.of("fault.intent")}
    applied = {r["data"]["fault"] for r in drill.of("fault.applied")}
    reverted = {r["data"]["fault"] for r in drill.of("fault.reverted") if r["data"]["verified"]}
    assert intents and intents == applied == reverted, drill.output[-3000:]
    assert not drill.of("fault.revert_failed") and not drill.of("fault.inject_failed")

    # The steady state holds again, and the debrief scored every step.
    assert drill.of("restore.verified") and not drill.of("restore.failed")
    steps = drill.debrief["steps"]
    assert steps and all(s["status"] in ("on_time", "late", "missed") for s in steps)
    assert all(s["score"] is not None for s in steps)
    assert {f["id"] for f in drill.debrief["faults"]} == intents

    # Scenario time: the scaled drill stays under a minute.
    started, ended = drill.of("run.started")[0], drill.of("run.ended")[0]
    assert ended["t"] - started["t"] < 60

    check_rto(drill)
    if drill.debrief["objectives"]["rpo"]["target_s"] is not None:
        check_rpo(drill, playbook_id, lab_env)


def check_rto(drill: Drill) -> None:
    """RTO is measured, and not shorter than the time the last fault was really in place."""
    rto = drill.debrief["objectives"]["rto"]
    assert rto["actual_s"] is not None, rto
    anchor = min(r["data"].get("effective_t", r["t"]) for r in drill.of("fault.applied"))
    # a fault the responders restored (restore: responders) was in place until they did,
    # before its hand-over; the engine's later revert found nothing to do
    handed = {r["data"]["fault"]: r["t"] for r in drill.of("fault.handed_over")}
    restored = {r["data"]["fault"] for r in drill.of("fault.reverted") if r["data"].get("already_restored")}
    ends = [handed.get(f, t) if f in restored else t for f, t in _revert_times(drill)]
    last_revert = max(ends)
    finest = min(p["interval_s"] for p in drill.of("run.started")[0]["data"]["probes"])
    assert rto["actual_s"] >= last_revert - anchor - finest - SLACK_S, (rto, last_revert - anchor)
    assert rto["met"] == (rto["actual_s"] <= rto["target_s"])


def _revert_times(drill: Drill) -> list[tuple[str, float]]:
    return [(r["data"]["fault"], float(r["t"])) for r in drill.of("fault.reverted")]


def check_rpo(drill: Drill, playbook_id: str, env_path: Path) -> None:
    """The measured RPO matches the lab's audit log of every write, and the backup bounds it."""
    rpo = drill.debrief["objectives"]["rpo"]
    assert rpo["actual_s"] is not None, rpo
    probe_id = drill.of("run.started")[0]["data"]["objectives"]["rpo_probe"]
    measurements = [
        r["data"]["measurement"] for r in drill.of("probe.measured") if r["data"]["probe"] == probe_id
    ]
    worst = max(measurements, key=lambda m: float(m["rpo_s"]))
    assert float(worst["rpo_s"]) == pytest.approx(rpo["actual_s"], abs=0.001)
    seq, written = int(worst["surviving"]["seq"]), float(worst["surviving"]["ts"])
    failed_at = float(worst["failed_at"])

    audit = audit_records(playbook_id, env_path)
    assert (seq, written) in [(n, float(ts)) for n, ts in audit], "the surviving record was really written"
    before = [float(ts) for _, ts in audit if float(ts) <= failed_at]
    # newest write before the failure → lost span; the record the probe saw was written, even when
    # a kill landed between the writer's data line and its audit line
    truth = max(before[-1], float(worst["seen"]["ts"])) - written
    interval = max(p["interval_s"] for p in drill.of("run.started")[0]["data"]["probes"])
    # The probe knows the writes it read. A write made after its last look before the loss is not
    # seen: when the record it remembers survived, it measures no loss, though that write (made
    # up to one write interval after the remembered one) is gone (engine/probes/data.py says so).
    low = truth - WRITE_INTERVAL_S - interval - SLACK_S
    assert low <= rpo["actual_s"] <= truth + WRITE_INTERVAL_S + interval + SLACK_S, (rpo, truth)
    assert rpo["actual_s"] <= BACKUP_INTERVAL_S + WRITE_INTERVAL_S + interval + SLACK_S
    assert rpo["met"] is True  # the lab backs up every few seconds; targets are minutes


def audit_records(playbook_id: str, env_path: Path) -> list[tuple[int, str]]:
    """Every write the lab's writer made (seq, unix time text), in order."""
    env = yaml.safe_load(env_path.read_text())
    if playbook_id == "ransomware-share":
        audit_dir = Path(env["ssh_hosts"]["app2"]["services"]["files"]["paths"]["audit"])
        text = (audit_dir / "ledger.log").read_text()
    else:
        container = env["targets"]["orders-db"]["containers"][0]
        text = subprocess.run(
            ["docker", "exec", container, "cat", "/audit/orders.log"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    return [(int(f[0]), f[1]) for line in text.splitlines() if len(f := line.split()) >= 2]
