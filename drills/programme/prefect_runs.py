"""Prefect for the drill programme: the site's work pool, its deployment, one-off flow runs.

The thin shell between the programme (:mod:`drills.programme.secret_schedule`) and the central Prefect server:
:func:`ensure_deployment` creates a client site's process work pool and its ``drill-run/<pool>``
deployment, :func:`create_flow_run` creates one drill's flow run a lead time before its moment
(idempotent per key; the flow gets ready early and injects at the moment). Every Prefect API
failure becomes a :class:`PrefectRunError` naming the server. Prefect is imported inside the
functions, so commands that never talk to it do not pay for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import structlog

from engine.errors import DrillError, InputError

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments.runner import RunnerDeployment

log = structlog.get_logger(__name__)

FLOW_NAME = "drill-run"
ENTRYPOINT = "engine/flow.py:drill_run"
REPO = Path(__file__).resolve().parents[2]


class PrefectRunError(DrillError):
    """Prefect could not do what the controller asked (API failure, clashing run): exit code 4."""

    exit_code = 4


class ScheduledDrill(Protocol):
    """What a flow run is made of: the deployment that runs it and its parameters."""

    @property
    def deployment(self) -> str:
        """``drill-run/<pool>``: the deployment whose worker runs the drill."""
        ...

    def parameters(self) -> dict[str, Any]:
        """The flow run's parameters: paths and options only — never the moment."""
        ...


def require_api_url() -> str:
    """The Prefect server's API URL; without one Prefect would use a throwaway local server."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise InputError(
            "PREFECT_API_URL is not set: start the server (`bcdrill server start`) and export"
            " PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    return str(url)


@contextlib.contextmanager
def prefect_errors(url: str) -> Iterator[None]:
    """Turn a failed Prefect API call into a :class:`PrefectRunError` naming the server."""
    import httpx
    from prefect.exceptions import PrefectException

    try:
        yield
    except (httpx.HTTPError, PrefectException) as exc:
        raise PrefectRunError(f"Prefect API at {url!r} failed: {exc}") from exc


def ensure_deployment(pool: str, source: Path = REPO) -> str:
    """Create (or update) the process work pool ``pool`` and its ``drill-run/<pool>`` deployment.

    The deployment pulls the code from ``source``, a folder that must exist at the same path
    on the site's worker (a checkout or an installed copy of bcdrill). No image is built.
    """
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    url = require_api_url()
    if not (source / ENTRYPOINT.split(":")[0]).is_file():
        raise InputError(f"source {str(source)!r} has no {ENTRYPOINT.split(':')[0]} (a bcdrill folder)")
    with prefect_errors(url), get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):  # the site's worker, starting, made it
                client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
                log.info("programme.pool_created", pool=pool)
    # Called from sync code, Prefect's dual sync/async methods return plain values.
    remote = cast("Flow[..., Any]", flow.from_source(source=str(source), entrypoint=ENTRYPOINT))
    deployment = cast(
        "RunnerDeployment",
        remote.to_deployment(
            name=pool,
            work_pool_name=pool,
            description="Unannounced business-continuity drills of one client site.",
        ),
    )
    with prefect_errors(url):
        deployment.apply()
    return f"{FLOW_NAME}/{pool}"


def create_flow_run(drill: ScheduledDrill, moment: datetime, key: str, run_name: str) -> str:
    """Create the one-off flow run of ``drill`` for ``moment``; return its id.

    The run is scheduled the drill's lead time (its ``lead_s`` parameter) before the moment:
    the drill readies itself early and injects at the moment. Idempotent per ``key``: Prefect
    returns the existing run for a key it has seen. If that run is scheduled at another
    time (a crash between Prefect and the store), it is refused, naming the run to delete.
    """
    from prefect.deployments import run_deployment

    start = run_start(moment, drill.parameters())

    with prefect_errors(require_api_url()):
        flow_run = cast(
            "FlowRun",
            run_deployment(
                drill.deployment,
                parameters=drill.parameters(),
                scheduled_time=start,
                flow_run_name=run_name,
                timeout=0,
                idempotency_key=key,
                as_subflow=False,
            ),
        )
    expected = flow_run.expected_start_time
    if expected is not None and abs((expected - start).total_seconds()) > 1:
        raise PrefectRunError(
            f"Prefect already has flow run {flow_run.name!r} ({flow_run.id}) for key {key!r} at"
            " another moment; delete it (`prefect flow-run delete ID`) and schedule again"
        )
    return str(flow_run.id)


def run_start(moment: datetime, parameters: dict[str, Any]) -> datetime:
    """When a drill's flow run is scheduled: its lead time (``lead_s``) before the moment."""
    return moment - timedelta(seconds=float(parameters.get("lead_s", 0.0)))


# ---------------------------------------------------------------- the run a precheck holds back


@dataclass(frozen=True)
class CurrentRun:
    """The flow run being held back: its id, name, deployment, key and parameters."""

    flow_run_id: str
    name: str
    deployment_id: str
    idempotency_key: str
    parameters: dict[str, Any]


def current_run() -> CurrentRun | None:
    """The Prefect flow run this code runs in, when it belongs to a deployment."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    flow_run = context.flow_run if context else None
    if flow_run is None or flow_run.deployment_id is None:
        return None
    return CurrentRun(
        flow_run_id=str(flow_run.id),
        name=flow_run.name,
        deployment_id=str(flow_run.deployment_id),
        idempotency_key=flow_run.idempotency_key or str(flow_run.id),
        parameters=dict(flow_run.parameters),
    )


def reschedule(run: CurrentRun, start: datetime, name: str) -> str:
    """A new flow run of ``run``'s deployment for the moment ``start`` (a postponed drill); its id.

    Like the first run it is scheduled its lead time before the moment.
    """
    from uuid import UUID

    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    count = run.idempotency_key.count(":postponed")
    flow_run = run_deployment(
        UUID(run.deployment_id),
        parameters=run.parameters,
        scheduled_time=run_start(start, run.parameters),
        flow_run_name=name,
        timeout=0,
        idempotency_key=f"{run.idempotency_key}:postponed{count + 1}",
        as_subflow=False,
    )
    if not isinstance(flow_run, FlowRun):  # pragma: no cover - sync call returns the run
        raise InputError("run_deployment returned no flow run")
    return str(flow_run.id)
