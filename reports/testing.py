"""Test helpers, shipped as public API: write real, hash-chained run journals with a fake clock.

>>> run = ScriptedRun(tmp_path)            # journal at tmp_path / "journal.jsonl"
>>> run.start(steps=(step("msp", "acknowledge", 120),))
>>> run.at(1).probe("web", "up")
>>> run.at(10).inject("stop-web")          # fault.intent + fault.applied: impact starts
>>> run.at(60).step("msp.acknowledge")
>>> run.at(90).revert("stop-web").probe("web", "up").end()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.clock import FakeClock
from engine.record.journal import JOURNAL_NAME, Journal
from engine.record.records import RecordType, RunStarted, StartedProbe, StartedStep
from engine.record.signing import SigningKey, init_key, load_signing_key


@dataclass(frozen=True)
class StepDef:
    """A response step for a scripted ``run.started`` record."""

    party: str
    id: str
    title: str
    within_s: float
    recorded_by: str = "ack"
    weight: float = 1.0
    probe: str | None = None
    state: str | None = None

    def started(self) -> StartedStep:
        """The step as ``run.started`` lists it."""
        key = f"{self.party}.{self.id}"
        return StartedStep(
            key, self.party, self.id, self.title, self.within_s, None, self.weight,
            self.recorded_by, self.probe, self.state,
        )  # fmt: skip


def step(party: str, id_: str, within_s: float, **options: Any) -> StepDef:
    """A step titled after its id unless ``title=`` is given."""
    title = options.pop("title", id_.replace("_", " ").capitalize())
    return StepDef(party, id_, title, within_s, **options)


DEFAULT_STEPS: tuple[StepDef, ...] = (
    step("msp", "acknowledge", 120, title="Acknowledge the alert"),
    step("msp", "restore", 600, title="Restore the service", recorded_by="probe", probe="web", state="up"),
    step("client", "report", 300, title="Report through the service desk"),
)


def run_started(
    *,
    run_id: str = "20260101-000000-test",
    steps: Sequence[StepDef] = DEFAULT_STEPS,
    responders: str = "simulate",
    time_scale: float = 1.0,
    probes: Sequence[tuple[str, float]] = (("web", 1.0),),
    steady_state: Sequence[str] = ("web",),
    rto_s: float | None = 900.0,
    rpo_s: float | None = None,
    weights: tuple[float, float] = (0.5, 0.5),
    late_limit: float = 3.0,
    bands: tuple[float, float, float] = (90.0, 70.0, 40.0),
    pass_score: float = 70.0,
    impact: tuple[int, float, str] = (0, 0.0, "EUR"),
    title: str = "Storefront web server dies",
    translations: Mapping[str, Mapping[str, str]] | None = None,
    run_class: str | None = "drill",
    participants: Sequence[tuple[str, str, str]] = (),
) -> dict[str, Any]:
    """The ``data`` of a ``run.started`` record, with test-friendly defaults."""
    return RunStarted(
        run_id=run_id,
        playbook_id="web-down",
        title=title,
        summary="The web server stops.",
        severity="high",
        playbook_path="playbooks/web-down.yaml",
        translations=translations or {},
        environment="lab",
        environment_kind="test",
        client="Acme Ltd",
        responders=responders,
        time_scale=time_scale,
        host="test-host",
        pid=1,
        engine_version="0.1.0",
        steps=tuple(s.started() for s in steps),
        probes=tuple(StartedProbe(p, "http", i, 0.5) for p, i in probes),
        steady_state=tuple(steady_state),
        rto_s=rto_s,
        rpo_s=rpo_s,
        weights={"msp": weights[0], "client": weights[1]},
        late_limit=late_limit,
        bands={"P": bands[0], "S": bands[1], "M": bands[2]},
        pass_score=pass_score,
        users_affected=impact[0],
        hourly_cost=impact[1],
        currency=impact[2],
        max_duration_s=1800.0,
        run_class=run_class,
        participants=tuple(participants),
    ).to_data()


class ScriptedRun:
    """Writes a run journal record by record, moving a :class:`FakeClock` with :meth:`at`."""

    def __init__(self, run_dir: Path, start: datetime | None = None) -> None:
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / JOURNAL_NAME
        self.clock = FakeClock(start or datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
        self.journal = Journal(self.path, self.clock)

    def at(self, t: float) -> ScriptedRun:
        """Move to ``t`` seconds after run start (never backwards)."""
        if t < self.clock.now():
            raise ValueError(f"time goes forward only: {t!r} < {self.clock.now()!r}")
        self.clock.advance(t - self.clock.now())
        return self

    def record(self, type_: str, **data: Any) -> ScriptedRun:
        """Append any record."""
        self.journal.append(type_, **data)
        return self

    def start(self, **options: Any) -> ScriptedRun:
        """``run.started`` (see :func:`run_started` for the options) then ``preflight.passed``."""
        self.record(RecordType.RUN_STARTED, **run_started(**options))
        return self.record(RecordType.PREFLIGHT_PASSED, targets=[], probes={})

    def probe(self, probe: str, state: str, detail: str = "") -> ScriptedRun:
        """``probe.changed``."""
        return self.record(RecordType.PROBE_CHANGED, probe=probe, state=state, detail=detail)

    def inject(self, fault: str, action: str = "container.stop", target: str = "web-1") -> ScriptedRun:
        """``fault.intent`` then ``fault.applied``."""
        self.intend(fault, action, target)
        return self.record(RecordType.FAULT_APPLIED, fault=fault)

    def intend(self, fault: str, action: str = "container.stop", target: str = "web-1") -> ScriptedRun:
        """``fault.intent`` only."""
        label = {"name": "web", "kind": "container", "ref": "c0ffee", "label": target}
        return self.record(
            RecordType.FAULT_INTENT, fault=fault, action=action, target=label, params={}, prior={}
        )

    def revert(self, fault: str, verified: bool = True) -> ScriptedRun:
        """``fault.reverted``."""
        return self.record(RecordType.FAULT_REVERTED, fault=fault, verified=verified)

    def step(self, key: str, by: str = "alice", source: str = "ack") -> ScriptedRun:
        """``step.recorded``."""
        party = key.split(".", 1)[0]
        return self.record(RecordType.STEP_RECORDED, step=key, party=party, by=by, source=source, note="")

    def end(self, reason: str = "completed") -> ScriptedRun:
        """``run.ended``, then close the journal."""
        self.record(RecordType.RUN_ENDED, reason=reason)
        self.journal.close()
        return self


def home_signing_key() -> SigningKey:
    """The MSP signing key of ``$BCDRILL_HOME``, made there when it has none."""
    key = load_signing_key()
    if key is None:
        init_key()
        key = load_signing_key()
    assert key is not None
    return key


def sealed_debrief(run_dir: Path) -> dict[str, Any]:
    """Debrief a finished scripted run and sign it with :func:`home_signing_key`, as the engine
    ends a run: a client's record holds only official drills whose debrief was signed. Returns
    the debrief."""
    from engine.run.evidence import seal_run
    from reports.debrief_writer import write_debrief

    debrief = write_debrief(run_dir)
    seal_run(run_dir, home_signing_key(), debrief)
    return debrief
