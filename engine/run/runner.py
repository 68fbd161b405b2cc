"""One drill, start to end: preflight → inject on the timeline → observe → revert → debrief.

This module is plain Python (no Prefect): :mod:`engine.flow` wraps it in the ``drill-run``
flow and turns injections and reverts into tasks through the two hooks. Every fault is
journaled (``fault.intent``) before it is applied and reverted in a ``finally`` block with
stop signals deferred, whatever ended the drill.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from engine import __version__
from engine.clock import Clock, RunClock
from engine.errors import (
    AbortedError,
    DrillError,
    InjectionError,
    InputError,
    JournalError,
    PreflightError,
)
from engine.logsetup import get_logger
from engine.logsetup import preload as preload_logging
from engine.model.types import Environment, FaultSpec, Playbook, ResponseStep, Restore, thaw
from engine.plugins import FAULTS
from engine.record.journal import JOURNAL_NAME, Journal, Listener
from engine.record.records import (
    RecordType,
    RunClass,
    RunStarted,
    StartedFault,
    StartedProbe,
    StartedStep,
    resolve_run_class,
)
from engine.record.runstore import abort_requested, environment_lock, release_owner, write_owner
from engine.record.signing import SigningKey, run_signing_key
from engine.run import fanout
from engine.run.context import responder_context
from engine.run.evidence import seal_run
from engine.run.hotwash import HotwashBook
from engine.run.injects import InjectScript, exercise_layout
from engine.run.observe import ProbeWatcher, wait_until_healthy
from engine.run.parts import RunParts
from engine.run.preflight import HOLD_PROBE_PACE_S, await_moment, parse_moment, prepare
from engine.run.prepared import PreparedFault
from engine.run.responses import Ack, AckInbox, ResponderContext, Responders, StepBook
from engine.run.reverts import revert_all, revert_one
from engine.run.runbook import perform
from engine.run.signals import StopSignals, stop_signals
from engine.transports.connections import Transports

log = get_logger(__name__)

# Hooks let the Prefect flow run each injection/revert as a task: hook(call, fault id); and the
# hold until a scheduled drill's moment: hook(call), nothing that spells the moment.
FaultHook = Callable[[Callable[[], None], str], None]
HoldHook = Callable[[Callable[[], None]], None]


@dataclass(frozen=True)
class RunOptions:
    """How to run a drill (all primitives, so a Prefect flow can take them as parameters)."""

    responders: str = "simulate"  # simulate | auto | manual
    seed: int | None = None
    time_scale: float = 1.0
    allow_production: bool = False
    restore_timeout_s: float = 30.0
    min_score: float | None = None
    tick_s: float = 0.02
    desk: str | None = None  # "HOST:PORT" to host the drill desk for this run
    mailbox: str | None = None  # "HOST:PORT" of the drill mailbox (default loopback, free port)
    mailbox_domain: str | None = None  # the domain of the personal drill addresses its pages show
    run_class: str | None = None  # drill | rehearsal | ci; None: from responders and plan
    plan: str | None = None  # the drill plan that started this run, if one did
    moment: str | None = None  # a scheduled drill's secret moment (ISO UTC): ready early, inject at it


@dataclass(frozen=True)
class RunResult:
    """What a finished drill gives its caller."""

    run_id: str
    run_dir: Path
    exit_code: int
    outcome: str
    reason: str
    debrief: Mapping[str, Any] | None
    unreverted: tuple[str, ...] = ()


@dataclass
class _ActiveFault:
    prepared: PreparedFault
    prior: Mapping[str, Any]
    applied_at: float


@dataclass
class _State:
    exit_code: int = 0
    reason: str = "completed"
    active: list[_ActiveFault] = field(default_factory=list)
    handed_over: list[_ActiveFault] = field(default_factory=list)  # the responders restore these
    injected: set[str] = field(default_factory=set)
    unreverted: list[str] = field(default_factory=list)
    restore_checked: bool = False  # ENDEX before a hotwash verified the restore already


class DrillRun:
    """Runs one playbook against one environment, journaling everything in ``run_dir``."""

    def __init__(
        self,
        playbook: Playbook,
        environment: Environment,
        run_dir: Path,
        options: RunOptions,
        parts: RunParts,
        clock: Clock | None = None,
        listeners: tuple[Listener, ...] = (),
        inject_hook: FaultHook | None = None,
        revert_hook: FaultHook | None = None,
        hold_hook: HoldHook | None = None,
    ) -> None:
        self.playbook = playbook.scaled(options.time_scale)
        self.environment = environment
        self.run_dir = run_dir
        self.run_id = run_dir.name
        self.options = options
        self.parts = parts
        self.run_class, self.signing_key = DrillRun.class_and_key(options)
        self.seed = options.seed if options.seed is not None else secrets.randbelow(2**31)
        self.clock = clock or RunClock()
        self.transports = Transports(environment)
        self.journal = Journal(run_dir / JOURNAL_NAME, self.clock)
        for listener in listeners:
            self.journal.subscribe(listener)
        self.book = StepBook(self.playbook, self.journal, self.clock)
        self.hotwash = HotwashBook(self.journal, environment.participants)
        self.journal.subscribe(self._on_record)
        self.script = InjectScript(
            self.playbook.exercise, self.playbook.steps, environment.participants,
            self.journal, self.book, self.clock, run_dir,
        )  # fmt: skip
        self._call_inject = inject_hook or (lambda fn, _name: fn())
        self._call_revert = revert_hook or (lambda fn, _name: fn())
        self._call_hold = hold_hook or (lambda fn: fn())
        self._watchers: list[ProbeWatcher] = []
        self._state = _State()

    # ------------------------------------------------------------------ public

    @staticmethod
    def class_and_key(options: RunOptions) -> tuple[RunClass, SigningKey | None]:
        """The run's class (:func:`resolve_run_class`) and the key that will sign it; bad input
        (an official drill without people in real time or without a key, a bad key reference)
        fails here, before anything runs. A scheduled flow asks before it takes the slot."""
        try:
            run_class = resolve_run_class(
                options.run_class, options.responders, options.plan is not None, options.time_scale
            )
        except ValueError as exc:
            raise InputError(f"run class: {exc}") from None
        return run_class, run_signing_key(run_class)

    def execute(self) -> RunResult:
        """Run the drill to its end and return the result (never leaves a fault behind).

        Raises :class:`JournalError` when the run folder cannot be written: then nothing
        was injected (the journal is written ahead of every action).
        """
        preload_logging()  # the first log line must not stall the timeline
        try:
            self._snapshot_inputs()
            with environment_lock(self.environment.name):
                write_owner(self.run_dir)
                try:
                    self._run_guarded()
                finally:
                    release_owner(self.run_dir)
                    self.transports.close()
        except OSError as exc:
            raise JournalError(f"cannot write run folder {str(self.run_dir)!r}: {exc.strerror}") from exc
        finally:
            self.journal.close()
        debrief = self._debrief()
        env = self.environment
        try:
            seal_run(self.run_dir, self.signing_key, debrief, env.participants, env.client)
        except (DrillError, OSError) as exc:  # the drill is over and journaled; `verify` will say unsigned
            log.error("evidence.not_signed", run=self.run_id, error=str(exc))
        return self._result(debrief)

    # ------------------------------------------------------------------ phases

    def _run_guarded(self) -> None:
        self.journal.append(RecordType.RUN_STARTED, **self._started_data())
        inbox = AckInbox(self.run_dir, self.book)
        responders: list[Responders] = []
        # One handler from preflight to the end of the wind-down: the first stop signal aborts,
        # later ones wait — there is no gap in which a signal could kill a revert half-way.
        with stop_signals() as signals:
            try:
                prepared = self._preflight()
                self._await_moment()
                inbox.start()
                self.script.start()
                responders = self._start_responders()
                self._timeline(prepared)
                self._hotwash(signals)
            except DrillError as exc:
                signals.defer()
                self._record_end(exc)
            finally:
                signals.defer()
                self._wind_down(inbox, responders)

    def _record_end(self, exc: DrillError) -> None:
        """Journal why the drill stopped early."""
        if isinstance(exc, PreflightError):
            self._fail(4, RecordType.PREFLIGHT_FAILED, str(exc))
        elif isinstance(exc, AbortedError):
            self._state.exit_code, self._state.reason = 3, str(exc)
            self.journal.append(RecordType.RUN_ABORTED, reason=str(exc), by=getattr(exc, "by", "signal"))
        else:
            self._fail(exc.exit_code if exc.exit_code != 1 else 4, RecordType.RUN_FAILED, str(exc))

    def _fail(self, code: int, record: str, reason: str) -> None:
        self._state.exit_code, self._state.reason = code, reason
        self.journal.append(record, reason=reason)
        log.error(record, reason=reason)

    def _hotwash(self, signals: StopSignals) -> None:
        """ENDEX — faults reverted, restore verified, steps closed — then the desk stays open
        for the participants' survey, for the playbook's window or until everyone answered.

        Stop signals are only noted from the reverts on; one ends the window, like an abort."""
        hotwash = self.playbook.exercise.hotwash
        if hotwash is None or not self._state.injected or not self.options.desk:
            return  # no survey without a desk to answer it on
        signals.defer()  # no signal may cut a revert short
        self._revert_everything()
        self._verify_restore()
        self._state.restore_checked = True
        self.book.close()
        self.book.keep_evaluating()
        self.hotwash.open(hotwash.window_s)
        deadline = self.clock.now() + hotwash.window_s
        while self.clock.now() < deadline and not self.hotwash.everyone_answered():
            if signals.deferred or abort_requested(self.run_dir):
                break
            self.clock.sleep(self.options.tick_s)
        self.hotwash.close()

    def _wind_down(self, inbox: AckInbox, responders: list[Responders]) -> None:
        for service in reversed(responders):
            service.stop()
        self._revert_everything()
        if self._state.injected and not self._state.restore_checked:
            self._verify_restore()
        inbox.stop()
        self.script.stop()
        self.book.close()
        self.hotwash.close()
        for watcher in self._watchers:
            watcher.stop()
        self.journal.append(RecordType.RUN_ENDED, reason=self._state.reason)

    def _revert_everything(self) -> None:
        unreverted = revert_all(
            [(a.prepared, a.prior) for a in [*self._state.handed_over, *self._state.active]],
            self.transports,
            self.journal,
            self._call_revert,
        )
        self._state.active.clear()
        self._state.handed_over.clear()
        self._state.unreverted.extend(unreverted)
        if self._state.unreverted:
            self._state.exit_code = 5
            self._state.reason = "revert failed: " + ", ".join(self._state.unreverted)

    def _preflight(self) -> list[PreparedFault]:
        prepared, probes = prepare(
            self.playbook,
            self.environment,
            self.transports,
            self.options.allow_production,
            self.seed,
            run_id=self.run_id,
            time_scale=self.options.time_scale,
        )
        self._watchers = [ProbeWatcher(p, self.journal) for p in probes]
        states = {}
        for watcher in self._watchers:
            watcher.start()
            states[watcher.probe.spec.id] = watcher.state
        broken = _not_steady(self.playbook.steady_state, states)
        if broken:
            raise PreflightError(f"steady state does not hold before injecting: {broken}")
        self.journal.append(
            RecordType.PREFLIGHT_PASSED,
            targets=[pf.action.target.to_json() for pf in prepared],
            probes=states,
        )
        return prepared

    def _await_moment(self) -> None:
        """A scheduled drill readied early holds here until its secret moment (preflight.await_moment)."""
        if self.options.moment is None:
            return
        for watcher in self._watchers:
            watcher.pace(HOLD_PROBE_PACE_S)
        moment = parse_moment(self.options.moment)
        try:
            self._call_hold(lambda: self._hold_until(moment))
        finally:
            for watcher in self._watchers:
                watcher.pace(0.0)

    def _hold_until(self, moment: datetime) -> None:
        await_moment(moment, self.clock, self.journal, self.run_dir, self._broken)

    def _broken(self) -> str | None:
        """Why the steady state does not hold now (None when it does)."""
        return _not_steady(self.playbook.steady_state, {w.probe.spec.id: w.state for w in self._watchers})

    def _timeline(self, prepared: list[PreparedFault]) -> None:
        t0 = self.clock.now()
        pending = sorted(prepared, key=lambda pf: pf.spec.at_s)
        while True:
            now = self.clock.now()
            self._check_abort(now - t0)
            due: list[PreparedFault] = []
            while pending and now - t0 >= pending[0].spec.at_s:
                due.append(pending.pop(0))
            for group in _by_fault(due):
                self._inject(group)
            self._end_due_faults(now)
            if not pending and not self._state.active and self._all_steps_settled(now):
                return
            self.clock.sleep(self.options.tick_s)

    def _inject(self, group: list[PreparedFault]) -> None:
        """Apply one playbook fault: on one target inline, on many targets in parallel."""
        if len(group) == 1:
            outcome = fanout.inject_one(
                group[0], self.transports, self.journal, self._track, self._call_inject
            )
            if outcome.error:
                action = group[0].action
                raise InjectionError(f"fault {action.fault_id!r} ({action.name}) failed: {outcome.error}")
            first = outcome.applied_t
        else:
            results: list[fanout.FanoutResult] = []
            fan = partial(
                fanout.inject_parallel, group, self.transports, self.journal, on_intent=self._track,
                revert_on_failure=False,  # the wind-down reverts every tracked target
            )  # fmt: skip
            try:
                self._call_inject(lambda: results.append(fan()), f"{group[0].spec.id}[x{len(group)}]")
            except fanout.FanoutError as exc:
                raise InjectionError(str(exc)) from exc
            first = results[0].first_applied_t if results else None
        if first is not None:
            self.book.start_impact(first)

    def _track(self, pf: PreparedFault, prior: Mapping[str, Any]) -> None:
        """A target's intent is durable: from now on the wind-down reverts it."""
        self._state.active.append(_ActiveFault(pf, prior, self.clock.now()))
        self._state.injected.add(pf.action.fault_id)

    def _end_due_faults(self, now: float) -> None:
        for active in list(self._state.active):
            if self._fault_over(active.prepared.spec, active.applied_at, now):
                self._state.active.remove(active)
                if self._hand_over(active, now):
                    continue
                ok = revert_one(
                    active.prepared, active.prior, self.transports, self.journal, self._call_revert
                )
                if not ok:
                    self._state.unreverted.append(active.prepared.action.fault_id)

    def _hand_over(self, active: _ActiveFault, now: float) -> bool:
        """With ``restore: responders``, a fault whose ``until`` step was recorded (before its
        upper bound) is left to the responders: journaled, verified at the end, then reverted
        only if something is left. True when handed over."""
        spec = active.prepared.spec
        if self._restore_mode(spec) != "responders" or spec.until is None:
            return False
        if self.book.recorded_at(spec.until) is None:
            return False
        if spec.duration_s is not None and now - active.applied_at >= spec.duration_s:
            return False
        self._state.handed_over.append(active)
        self.journal.append(
            RecordType.FAULT_HANDED_OVER,
            fault=active.prepared.action.fault_id,
            step=spec.until,
            restore="responders",
        )
        return True

    def _restore_mode(self, spec: FaultSpec) -> Restore:
        """Who restores the service at the ``until`` step: the playbook's word, else the
        action's default (responders for faults a responder can undo)."""
        if spec.restore is not None:
            return spec.restore
        return "responders" if FAULTS.get(spec.action).responder_restorable else "engine"

    def _fault_over(self, spec: FaultSpec, applied_at: float, now: float) -> bool:
        if spec.duration_s is not None and now - applied_at >= spec.duration_s:
            return True
        if spec.until is None:
            return False
        if self.book.recorded_at(spec.until) is not None:
            return True
        step = self.playbook.step(spec.until)
        return self.book.settled(step, now, self.playbook.scoring.late_limit, self._exercised(step))

    def _all_steps_settled(self, now: float) -> bool:
        limit = self.playbook.scoring.late_limit
        return all(self.book.settled(s, now, limit, self._exercised(s)) for s in self.playbook.steps)

    def _exercised(self, step: ResponseStep) -> bool:
        """In ``auto`` mode only probe-recorded and runbook-automated steps happen."""
        if self.options.responders != "auto":
            return True
        return step.recorded_by.kind == "probe" or step.runbook is not None

    def _check_abort(self, elapsed: float) -> None:
        request = abort_requested(self.run_dir)
        if request:
            raise _Abort(f"aborted by {request['by']}: {request['reason']}", by=request["by"])
        if elapsed > self.playbook.safety.max_duration_s:
            raise _Abort(
                f"safety: drill exceeded max_duration {self.playbook.safety.max_duration_s:g}s",
                by="watchdog",
            )
        if self._state.injected:
            for watcher in self._watchers:
                if watcher.probe.spec.id in self.playbook.safety.abort_when and watcher.state == "down":
                    raise _Abort(
                        f"safety: safeguard probe {watcher.probe.spec.id!r} went down",
                        by="safeguard",
                    )

    def _verify_restore(self) -> None:
        probes = [w.probe for w in self._watchers if w.probe.spec.id in self.playbook.steady_state]
        states = wait_until_healthy(probes, self.options.restore_timeout_s)
        if all(s == "up" for s in states.values()):
            self.journal.append(RecordType.RESTORE_VERIFIED, probes=states)
            return
        self.journal.append(
            RecordType.RESTORE_FAILED, probes=states, reason="steady state did not return after revert"
        )
        if self._state.exit_code == 0:
            self._state.exit_code, self._state.reason = (
                1,
                "steady state did not return after revert",
            )

    # ------------------------------------------------------------------ helpers

    def _on_record(self, record: Mapping[str, Any]) -> None:
        """Probe transitions record probe-derived steps (after impact start)."""
        if record["type"] != RecordType.PROBE_CHANGED or self.book.anchor is None:
            return
        data = record["data"]
        for step in self.playbook.steps:
            how = step.recorded_by
            matches = how.kind == "probe" and how.probe == data["probe"] and how.state == data["state"]
            if matches and self.book.recorded_at(step.key) is None:
                observed = data.get("observed_t")
                self.book.record(Ack(step.key, by=f"probe:{how.probe}", source="probe", observed_t=observed))

    def _context(self) -> ResponderContext:
        return responder_context(
            self.playbook,
            self.book,
            self.hotwash,
            run_dir=self.run_dir,
            client=self.environment.client,
            environment=self.environment.name,
            participants=self.environment.participants,
            seed=self.seed,
            clock=self.clock,
            options={
                "desk": self.options.desk or "",
                "mailbox": self.options.mailbox or "",
                "mailbox_domain": self.options.mailbox_domain or "",
                "environment_path": str(self.environment.source or ""),
            },
            perform_runbook=partial(perform, environment=self.environment, transports=self.transports),
        )

    def _start_responders(self) -> list[Responders]:
        """Run services (the drill desk) first, then simulated people if the run has them."""
        started: list[Responders] = []
        people = (self.parts.responders,) if self.parts.responders else ()
        for factory in (*self.parts.services, *people):
            service = factory(self._context())
            service.start()
            started.append(service)
        return started

    def _snapshot_inputs(self) -> None:
        for source, name in (
            (self.playbook.source, "playbook.yaml"),
            (self.environment.source, "environment.yaml"),
        ):
            if source is not None:
                shutil.copyfile(source, self.run_dir / name)

    def _started_data(self) -> dict[str, Any]:
        """The scenario as it runs, in the ``run.started`` layout (engine.record.records)."""
        pb, env = self.playbook, self.environment
        return RunStarted(
            run_id=self.run_id, playbook_id=pb.id, title=pb.title, summary=pb.summary,
            severity=pb.severity, playbook_path=str(pb.source) if pb.source else None,
            translations=pb.translations, environment=env.name, environment_kind=env.kind,
            client=env.client, responders=self.options.responders, time_scale=self.options.time_scale,
            seed=self.seed, host=socket.gethostname(), pid=os.getpid(), engine_version=__version__,
            steps=tuple(_started_step(s) for s in pb.steps),
            faults=tuple(
                StartedFault(f.id, f.action, f.target, f.at_s, f.duration_s, f.until, self._restore_mode(f))
                for f in pb.faults
            ),
            probes=tuple(StartedProbe(p.id, p.kind, p.interval_s, p.timeout_s) for p in pb.probes),
            steady_state=tuple(pb.steady_state), rto_s=pb.objectives.rto_s, rpo_s=pb.objectives.rpo_s,
            rpo_probe=pb.objectives.rpo_probe, weights=thaw(pb.scoring.weights),
            late_limit=pb.scoring.late_limit, bands=thaw(pb.scoring.bands), pass_score=pb.scoring.pass_score,
            users_affected=pb.impact.users_affected, hourly_cost=pb.impact.hourly_cost,
            currency=pb.impact.currency, max_duration_s=pb.safety.max_duration_s,
            abort_when=tuple(pb.safety.abort_when), exercise=exercise_layout(pb.exercise),
            run_class=self.run_class.value, plan=self.options.plan,
            signing_key=self.signing_key.fingerprint if self.signing_key else None,
            # who may own an improvement (names and roles only: contacts stay in the environment)
            participants=tuple((p.name, p.party, p.role) for p in env.participants),
        ).to_data()  # fmt: skip

    def _debrief(self) -> Mapping[str, Any] | None:
        """The debrief, or None when the debriefer failed (the run then exits 4, never 0)."""
        try:
            return self.parts.debriefer(self.run_dir)
        except Exception as exc:  # a debriefer is a plugin: any failure must cost the pass, not the result
            log.exception("debrief.failed", run=self.run_id)
            self._state.exit_code = max(self._state.exit_code, 4)
            self._state.reason = (
                f"the debrief could not be written ({exc!r}); see the log, then: bcdrill report {self.run_id}"
            )
            return None

    def _result(self, debrief: Mapping[str, Any] | None) -> RunResult:
        state = self._state
        code = state.exit_code
        outcome = str(debrief.get("outcome")) if debrief else ("passed" if code == 0 else "failed")
        if code == 0 and outcome != "passed":
            code = 1
        score = debrief.get("score") if debrief else None
        min_score = self.options.min_score
        if code == 0 and min_score is not None and isinstance(score, int | float) and score < min_score:
            code, state.reason = 1, f"score {score} is below --min-score {min_score:g}"
        return RunResult(
            self.run_id, self.run_dir, code, outcome, state.reason, debrief, tuple(state.unreverted)
        )


def _not_steady(steady_state: tuple[str, ...], states: Mapping[str, str | None]) -> str | None:
    """``probe 'x' is down, …`` for the steady-state probes that are not up; None when all are."""
    broken = [p for p in steady_state if states.get(p) != "up"]
    return ", ".join(f"probe {p!r} is {states.get(p)}" for p in broken) or None


def _by_fault(due: list[PreparedFault]) -> list[list[PreparedFault]]:
    """Due targets grouped by playbook fault, in timeline order."""
    groups: dict[str, list[PreparedFault]] = {}
    for pf in due:
        groups.setdefault(pf.spec.id, []).append(pf)
    return list(groups.values())


class _Abort(AbortedError):
    def __init__(self, message: str, by: str) -> None:
        super().__init__(message)
        self.by = by


def _started_step(step: ResponseStep) -> StartedStep:
    how = step.recorded_by
    runbook = None if step.runbook is None else step.runbook.describe()
    return StartedStep(
        step.key, step.party, step.id, step.title, step.within_s, step.after, step.weight,
        how.kind, how.probe, how.state, runbook,
    )  # fmt: skip
