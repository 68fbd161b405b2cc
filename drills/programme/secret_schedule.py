"""The drill programme: the controllers' secret schedule, and scheduling plans into it.

``bcdrill schedule`` picks each drill's moment (:mod:`drills.programme.schedule`), commits to it
(:mod:`drills.programme.commitment`), stores moment and nonce in a controllers-only file under
``$BCDRILL_HOME/programme/`` (folder 0700, file 0600) and creates a Prefect flow run of the
``drill-run`` deployment for the client site's work pool at that moment. The flow run
carries a neutral name and only paths and options as parameters: nothing in it tells the
moment except its scheduled time, which only people with access to the Prefect UI/API
(the MSP) can see. The Prefect calls themselves live in :mod:`drills.programme.prefect_runs`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from drills.programme.commitment import commit, neutral_run_name
from drills.programme.drill_plans import DrillPlan
from drills.programme.prefect_runs import FLOW_NAME, REPO, create_flow_run, ensure_deployment, require_api_url
from drills.programme.schedule import ScheduledDrill
from engine.errors import DrillError, InputError
from engine.home import home
from engine.record.statefiles import write_private_text

log = structlog.get_logger(__name__)

PROGRAMME_FORMAT = "bcdrill-programme/v1"
RESPONDER_MODES = ("simulate", "auto", "manual")
DEFAULT_LEAD_S = 120.0  # the flow run starts this long before the moment (boot, slot, preflight)
MAX_LEAD_S = 1800.0  # longer leads only widen the time the run is visible on the worker early


class ProgrammeError(DrillError):
    """The programme store could not do what the controller asked: exit code 4."""

    exit_code = 4


def programme_dir() -> Path:
    """The controllers-only folder of the secret schedule."""
    return home() / "programme"


def slug(text: str) -> str:
    """Lower-case words joined by ``-`` (``Demo Bakery Ltd`` → ``demo-bakery-ltd``)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "client"


def _plan_file(plan: DrillPlan) -> Path:
    if plan.source is None:
        raise InputError(f"plan {plan.name} has no file: schedule plans loaded from files")
    return plan.source.resolve()


def default_pool(plan: DrillPlan) -> str:
    """The work pool of a client site when ``schedule --pool`` is not given.

    The plan's own ``pool`` when it names one, else ``site-<client>``.
    """
    return plan.pool or f"site-{slug(plan.client)}"


def plan_key(plan: DrillPlan, index: int) -> str:
    """The idempotency key of a plan's ``index``-th drill: plan, window year and index.

    The plan is named by its client and a short hash of its file path, so two plans of
    one client (two sites) never share keys; nothing in the key depends on the moment.
    """
    where = hashlib.sha256(str(_plan_file(plan)).encode()).hexdigest()[:8]
    return f"bcdrill:{slug(plan.client)}-{where}:{plan.window.first.year}:{index}"


# ---------------------------------------------------------------- stored drills


@dataclass(frozen=True)
class RunSettings:
    """How the worker runs a scheduled drill (parameters of the flow run, never the moment).

    ``lead_s``: the flow run starts this long before the secret moment, so the worker's
    process boot, the environment slot and preflight are done when the moment comes. It is
    machine time (boot and preflight do not shrink with the drill), so ``time_scale`` does
    not scale it.
    """

    runs_root: str
    responders: str = "manual"
    time_scale: float = 1.0
    seed: int | None = None
    lead_s: float = DEFAULT_LEAD_S

    def __post_init__(self) -> None:
        if self.responders not in RESPONDER_MODES:
            raise InputError(f"responders {self.responders!r} must be one of {', '.join(RESPONDER_MODES)}")
        if not 0.001 <= self.time_scale <= 10.0:
            raise InputError(f"time scale {self.time_scale!r} must be between 0.001 and 10")
        if not 0 <= self.lead_s <= MAX_LEAD_S:
            raise InputError(f"lead {self.lead_s:g}s must be between 0s and {MAX_LEAD_S:g}s")


@dataclass(frozen=True)
class Postponement:
    """A drill held back just before its moment (a real incident was open), and where it went.

    ``start`` is the new moment, or None when no allowed slot was left in the window.
    """

    decided_at: datetime
    reason: str
    start: datetime | None
    run_name: str | None
    flow_run_id: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON form for the store."""
        return {
            "decided_at": self.decided_at.isoformat(),
            "reason": self.reason,
            "start": self.start.isoformat() if self.start else None,
            "run_name": self.run_name,
            "flow_run_id": self.flow_run_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Postponement:
        """Read the store's JSON form."""
        start = data.get("start")
        return cls(
            decided_at=datetime.fromisoformat(data["decided_at"]),
            reason=str(data["reason"]),
            start=datetime.fromisoformat(start) if start else None,
            run_name=data.get("run_name"),
            flow_run_id=data.get("flow_run_id"),
        )


@dataclass(frozen=True)
class StoredDrill:
    """One drill of the secret schedule: the moment, the commitment's nonce, its flow run.

    ``flow_run_id`` is empty while the flow run is being created (a crash in between is
    resumed by the next ``bcdrill schedule`` of the same plan).
    """

    key: str
    run_name: str
    client: str
    plan: str
    playbook: str
    environment: str
    pool: str
    start: datetime
    length_s: int
    time_zone: str
    min_spacing_s: int
    digest: str
    nonce: str = field(repr=False)
    settings: RunSettings
    flow_run_id: str = ""
    postponements: tuple[Postponement, ...] = ()

    @property
    def effective_start(self) -> datetime | None:
        """When the drill will (or did) run: the last postponement's moment, else ``start``."""
        if not self.postponements:
            return self.start
        return self.postponements[-1].start

    @property
    def dropped(self) -> bool:
        """True when the drill was held back with no allowed slot left: it will never run."""
        return bool(self.postponements) and self.postponements[-1].start is None

    @property
    def deployment(self) -> str:
        """``drill-run/<pool>``: the deployment whose worker runs this drill."""
        return f"{FLOW_NAME}/{self.pool}"

    def names(self) -> tuple[str, ...]:
        """Every name and id the drill is known by: key, run names, flow run ids."""
        found = [self.key, self.run_name, self.flow_run_id]
        for p in self.postponements:
            found += [p.run_name or "", p.flow_run_id or ""]
        return tuple(n for n in found if n)

    def scheduled(self) -> ScheduledDrill:
        """The drill as the scheduler sees it (at its effective moment) for spacing rules."""
        return ScheduledDrill(
            client=self.client,
            environment=self.environment,
            playbook=self.playbook,
            start=self.effective_start or self.start,
            length_s=self.length_s,
            min_spacing_s=self.min_spacing_s,
            time_zone=self.time_zone,
        )

    def parameters(self) -> dict[str, Any]:
        """The flow run's parameters: paths and options only — never the moment."""
        params: dict[str, Any] = {
            "playbook_path": self.playbook,
            "environment_path": self.environment,
            "runs_root": self.settings.runs_root,
            "responders": self.settings.responders,
            "time_scale": self.settings.time_scale,
            "plan_path": self.plan,
        }
        if self.settings.lead_s:
            params["lead_s"] = self.settings.lead_s
        if self.settings.seed is not None:
            params["seed"] = self.settings.seed
        return params

    def to_json(self) -> dict[str, Any]:
        """JSON form for the store (includes the secret moment and nonce)."""
        return {
            "key": self.key,
            "run_name": self.run_name,
            "flow_run_id": self.flow_run_id,
            "client": self.client,
            "plan": self.plan,
            "playbook": self.playbook,
            "environment": self.environment,
            "pool": self.pool,
            "start": self.start.isoformat(),
            "length_s": self.length_s,
            "time_zone": self.time_zone,
            "min_spacing_s": self.min_spacing_s,
            "digest": self.digest,
            "nonce": self.nonce,
            "settings": {
                "runs_root": self.settings.runs_root,
                "responders": self.settings.responders,
                "time_scale": self.settings.time_scale,
                "seed": self.settings.seed,
                "lead_s": self.settings.lead_s,
            },
            "postponements": [p.to_json() for p in self.postponements],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredDrill:
        """Read the store's JSON form."""
        return cls(
            key=data["key"],
            run_name=data["run_name"],
            flow_run_id=data.get("flow_run_id", ""),
            client=data["client"],
            plan=data["plan"],
            playbook=data["playbook"],
            environment=data["environment"],
            pool=data["pool"],
            start=datetime.fromisoformat(data["start"]),
            length_s=int(data["length_s"]),
            time_zone=data["time_zone"],
            min_spacing_s=int(data["min_spacing_s"]),
            digest=data["digest"],
            nonce=data["nonce"],
            settings=RunSettings(**data["settings"]),
            postponements=tuple(Postponement.from_json(p) for p in data.get("postponements", [])),
        )


def new_stored_drill(
    drill: ScheduledDrill, plan: DrillPlan, key: str, pool: str, settings: RunSettings
) -> StoredDrill:
    """A freshly picked drill with its commitment (fresh nonce) and neutral run name."""
    commitment = commit(drill.start)
    return StoredDrill(
        key=key,
        run_name=neutral_run_name(),
        client=drill.client,
        plan=str(_plan_file(plan)),
        playbook=drill.playbook,
        environment=drill.environment,
        pool=pool,
        start=drill.start,
        length_s=drill.length_s,
        time_zone=drill.time_zone,
        min_spacing_s=drill.min_spacing_s,
        digest=commitment.digest,
        nonce=commitment.nonce,
        settings=settings,
    )


# ---------------------------------------------------------------- the store


class ProgrammeStore:
    """The secret schedule: one JSON file, read and replaced under an exclusive lock.

    The folder is created 0700 and the file 0600: only the controllers' account reads it.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or programme_dir()
        self.path = self.folder / "schedule.json"

    def load(self) -> tuple[StoredDrill, ...]:
        """Every stored drill (none when the store does not exist yet)."""
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return ()
        except OSError as exc:
            raise ProgrammeError(f"cannot read the programme store {self.path}: {exc}") from exc
        try:
            data = json.loads(text)
            if data.get("format") != PROGRAMME_FORMAT:
                raise ValueError(f"format {data.get('format')!r} is not {PROGRAMME_FORMAT!r}")
            return tuple(StoredDrill.from_json(d) for d in data["drills"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ProgrammeError(f"programme store {self.path} is damaged: {exc}") from exc

    def find(self, ref: str) -> StoredDrill:
        """The drill known by ``ref`` (run name, flow run id or key, postponed ones too)."""
        for drill in self.load():
            if ref in drill.names():
                return drill
        raise InputError(f"no scheduled drill is called {ref!r} (see `bcdrill calendar`)")

    def add(self, drills: Sequence[StoredDrill]) -> None:
        """Store new drills; a key already stored is refused."""

        def change(current: list[StoredDrill]) -> list[StoredDrill]:
            known = {d.key for d in current}
            clash = [d.key for d in drills if d.key in known]
            if clash:
                raise ProgrammeError(f"already scheduled: {', '.join(map(repr, clash))}")
            return [*current, *drills]

        self._modify(change)

    def update(self, key: str, change: Callable[[StoredDrill], StoredDrill]) -> StoredDrill:
        """Replace the drill ``key`` by ``change(drill)`` and return the new version."""
        result: list[StoredDrill] = []

        def apply(current: list[StoredDrill]) -> list[StoredDrill]:
            out = []
            for drill in current:
                if drill.key == key:
                    drill = change(drill)
                    result.append(drill)
                out.append(drill)
            if not result:
                raise InputError(f"no scheduled drill has key {key!r}")
            return out

        self._modify(apply)
        return result[0]

    def _modify(self, change: Callable[[list[StoredDrill]], list[StoredDrill]]) -> None:
        with self._locked():
            drills = change(list(self.load()))
            body = {"format": PROGRAMME_FORMAT, "drills": [d.to_json() for d in drills]}
            self._write(json.dumps(body, indent=2, sort_keys=True) + "\n")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, text: str) -> None:
        write_private_text(self.path, text)


def now_utc() -> datetime:
    """The current UTC time (one place, so tests and commands agree)."""
    return datetime.now(UTC)


# ---------------------------------------------------------------- scheduling plans


@dataclass(frozen=True)
class PlanRequest:
    """One plan to schedule, on the work pool of its client site."""

    plan: DrillPlan
    pool: str


@dataclass(frozen=True)
class ScheduleOutcome:
    """What ``schedule`` did for the controllers: new drills, and plans already scheduled."""

    scheduled: tuple[StoredDrill, ...]
    already: tuple[StoredDrill, ...]


def _keys(request: PlanRequest) -> list[str]:
    return [plan_key(request.plan, i) for i in range(1, request.plan.quota + 1)]


def pick_new_drills(
    requests: Sequence[PlanRequest],
    stored: Sequence[StoredDrill],
    settings: RunSettings,
    capacity_per_day: int = 1,
    msp_time_zone: str = "UTC",
    now: datetime | None = None,
) -> tuple[StoredDrill, ...]:
    """Pick moments (crypto RNG) for the plans not stored yet; existing drills count as taken."""
    from drills.programme.schedule import pick_times

    known = {d.key for d in stored}
    todo = [r for r in requests if not set(_keys(r)) & known]
    owners = {(r.plan.client, str(r.plan.environment)): r for r in todo}
    if len(owners) != len(todo):
        raise InputError("two plans share a client and an environment: schedule them one at a time")
    picked = pick_times(
        [r.plan for r in todo],
        capacity_per_day=capacity_per_day,
        existing=[d.scheduled() for d in stored],
        msp_time_zone=msp_time_zone,
        not_before=now or now_utc(),
    )
    counters: dict[str, int] = {}
    drills = []
    for drill in picked:  # sorted by start: a plan's drills get keys in time order
        request = owners[(drill.client, drill.environment)]
        index = counters[request.plan.client] = counters.get(request.plan.client, 0) + 1
        key = plan_key(request.plan, index)
        drills.append(new_stored_drill(drill, request.plan, key, request.pool, settings))
    return tuple(drills)


def schedule(
    requests: Sequence[PlanRequest],
    settings: RunSettings,
    store: ProgrammeStore,
    capacity_per_day: int = 1,
    msp_time_zone: str = "UTC",
    source: Path = REPO,
) -> ScheduleOutcome:
    """Pick, store (before Prefect hears of it), then create each drill's flow run.

    Drills stored by an earlier, interrupted ``schedule`` without a flow run get it now.
    """
    require_api_url()
    stored = store.load()
    mine = {k for r in requests for k in _keys(r)}
    already = tuple(d for d in stored if d.key in mine and d.flow_run_id)
    pending = [d for d in stored if d.key in mine and not d.flow_run_id]
    new = pick_new_drills(requests, stored, settings, capacity_per_day, msp_time_zone)
    store.add(new)
    created = []
    for pool in sorted({d.pool for d in (*new, *pending)}):
        ensure_deployment(pool, source)
    for drill in (*pending, *new):
        run_id = create_flow_run(drill, drill.start, drill.key, drill.run_name)
        created.append(store.update(drill.key, _with_flow_run(run_id)))
        log.info("programme.scheduled", client=drill.client, run=drill.run_name, pool=drill.pool)
    return ScheduleOutcome(tuple(created), already)


def _with_flow_run(flow_run_id: str) -> Callable[[StoredDrill], StoredDrill]:
    def change(drill: StoredDrill) -> StoredDrill:
        return replace(drill, flow_run_id=flow_run_id)

    return change
