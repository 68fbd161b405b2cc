"""A step recorded from a probe counts when the probe observed the state, not when it was written.

A probe's check that sees a failure may take its whole timeout to return, and the step record is
written after that (and after an fsync); the recovery time is measured from the probe's own
``observed_t``, so the step must be too — never before impact start.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.clock import FakeClock
from engine.record.journal import JOURNAL_NAME, Journal
from engine.record.records import RecordType
from engine.run.responses import Ack, StepBook
from engine.spec.loader import load_playbook
from reports.testing import ScriptedRun, step
from tests.conftest import REPO
from tests.journal_helpers import records
from tests.test_scoring import debrief_of

PLAYBOOK = REPO / "playbooks" / "storefront-down.yaml"
PROBE_STEPS = (
    step("msp", "detect", 1.0, recorded_by="probe", probe="web", state="down"),
    step("msp", "restore", 10.0, recorded_by="probe", probe="web", state="up"),
)


def _probe_step(run: ScriptedRun, key: str, state: str, observed_t: float) -> ScriptedRun:
    """A transition and its step as a journal written before probe steps carried ``acted_t``."""
    run.record(RecordType.PROBE_CHANGED, probe="web", state=state, detail="", observed_t=observed_t)
    return run.record(
        RecordType.STEP_RECORDED, step=key, party="msp", by="probe:web", source="probe", note="",
        out_of_order=False, observed_t=observed_t,
    )  # fmt: skip


def _probe_run(tmp_path: Path, down_observed_t: float) -> ScriptedRun:
    run = ScriptedRun(tmp_path).start(steps=PROBE_STEPS, probes=(("web", 0.1),), rto_s=10.0)
    run.at(0.5).probe("web", "up")
    run.at(10).inject("f1")
    _probe_step(run.at(11.45), "msp.detect", "down", down_observed_t)  # the check timed out at 11.45
    _probe_step(run.at(20.0), "msp.restore", "up", 19.99)
    return run.at(21).revert("f1").end()


def test_a_probe_step_counts_when_the_probe_observed_the_state(tmp_path: Path) -> None:
    debrief = debrief_of(_probe_run(tmp_path, down_observed_t=10.95))
    detect, restore = debrief.steps
    assert (detect.actual_s, detect.status, detect.score) == (pytest.approx(0.95), "on_time", 100.0)
    assert restore.actual_s == pytest.approx(9.99) == debrief.objectives.rto.actual_s


def test_a_probe_step_observed_before_impact_start_counts_at_impact_start(tmp_path: Path) -> None:
    """The check that saw the failure started just before the fault took effect."""
    detect, _ = debrief_of(_probe_run(tmp_path, down_observed_t=9.97)).steps
    assert detect.actual_s == 0.0


def _book(tmp_path: Path) -> tuple[StepBook, FakeClock]:
    clock = FakeClock()
    book = StepBook(load_playbook(PLAYBOOK), Journal(tmp_path / JOURNAL_NAME, clock), clock)
    clock.advance(10)
    book.start_impact(clock.now())
    clock.advance(1.45)  # the check that saw the state returned at its timeout
    return book, clock


@pytest.mark.parametrize(("observed_t", "expected"), [(10.95, 10.95), (9.97, 10.0)])
def test_stepbook_records_a_probe_step_at_its_observation(
    tmp_path: Path, observed_t: float, expected: float
) -> None:
    book, _ = _book(tmp_path)
    assert book.record(Ack("msp.acknowledge", "probe:storefront", source="probe", observed_t=observed_t))
    (rec,) = [r for r in records(tmp_path) if r["type"] == RecordType.STEP_RECORDED]
    assert rec["t"] == pytest.approx(11.45)
    assert rec["data"]["stamp"] == "probe" and rec["data"]["acted_t"] == pytest.approx(expected)
    assert rec["data"]["observed_t"] == observed_t
    assert book.recorded_at("msp.acknowledge") == pytest.approx(expected)
