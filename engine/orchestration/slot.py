"""One drill per environment across every worker: the ``bcdrill-environment-<env>`` Prefect slot.

A run takes the slot of a strict global concurrency limit (limit 1) with a lease it renews
while it runs, and writes down who holds it (``<home>/locks/<env>.slot.json``: run id, pid,
host, lease id). The lease alone cannot free the slot after a ``kill -9`` in every mode: the
temporary (ephemeral) Prefect server keeps leases in its memory, so when it dies with its run
the slot row stays taken in the database for good. Hence:

* ``bcdrill recover`` releases the slot of a dead run (:func:`release_dead_holders`) on the
  server it was taken on — when that server died with its run, on the same database;
* a later run that finds the slot taken by a dead holder on this machine releases it and
  takes it (:func:`environment_slot`);
* a run that cannot get the slot says which run holds it and how to recover (exit 4).

A scheduled drill readied before its secret moment (:func:`engine.run.preflight.await_moment`) waits for the
slot until that moment: the drill before it on the same environment may still be running.

Releasing revokes the holder's lease when the server still knows it; when the lease is gone
with the server that held it, the limit's active slots are reset to zero.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from engine.errors import PreflightError
from engine.home import home
from engine.record.runstore import process_alive, process_start

SLOT_WAIT_S = 5.0
SLOT_LEASE_S = 60.0  # Prefect's minimum lease
RENEW_EVERY_S = SLOT_LEASE_S / 3  # while a drill runs
_POLL_S = 0.5
_LONG_POLL_S = 2.0  # while a drill readied early waits for the one before it (spares the server)

log = logging.getLogger(__name__)


def slot_name(environment: str) -> str:
    """The Prefect global concurrency limit of one environment."""
    return f"bcdrill-environment-{environment}"


@dataclass(frozen=True)
class SlotHolder:
    """Who took an environment's slot on this machine."""

    environment: str
    run_id: str
    pid: int
    host: str
    lease_id: str
    # where the slot was taken: the Prefect API, and the Prefect home of the process that took
    # it (a bcdrill server's database is there); "" in notes written before they were kept
    api_url: str = ""
    prefect_home: str = ""
    pid_start: str | None = None  # when the holder's process started: a reused pid is not it

    def dead(self) -> bool:
        """True when the holder ran on this host and its process is gone."""
        return self.host == socket.gethostname() and not process_alive(self.pid, self.pid_start)

    def describe(self) -> str:
        """``run R (pid P on host H)``."""
        return f"run {self.run_id} (pid {self.pid} on {self.host})"


def holder_file(environment: str) -> Path:
    """Where this machine notes the holder of an environment's slot."""
    return home() / "locks" / f"{environment}.slot.json"


def read_holder(environment: str) -> SlotHolder | None:
    """The noted holder of the slot, or None (no note, or an unreadable one)."""
    try:
        data = json.loads(holder_file(environment).read_text())
        return SlotHolder(
            environment=environment,
            run_id=str(data["run_id"]),
            pid=int(data["pid"]),
            host=str(data["host"]),
            lease_id=str(data["lease_id"]),
            api_url=str(data.get("api_url") or ""),
            prefect_home=str(data.get("prefect_home") or ""),
            pid_start=str(data["pid_start"]) if data.get("pid_start") else None,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_holder(holder: SlotHolder) -> None:
    path = holder_file(holder.environment)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(holder)))
    os.replace(tmp, path)


def _forget_holder(holder: SlotHolder) -> None:
    """Remove the note, unless another run has replaced it meanwhile."""
    current = read_holder(holder.environment)
    if current is not None and current.run_id == holder.run_id:
        holder_file(holder.environment).unlink(missing_ok=True)


@contextmanager
def environment_slot(environment: str, run_id: str, wait_until: datetime | None = None) -> Iterator[None]:
    """Hold the environment's slot for the body; release it after, however the body ends.

    A busy slot is waited for :data:`SLOT_WAIT_S`, or until ``wait_until`` (UTC) when later.
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    wait_s = SLOT_WAIT_S
    if wait_until is not None:
        wait_s = max(wait_s, (wait_until - datetime.now(UTC)).total_seconds())
    settings = get_current_settings()
    with get_client(sync_client=True) as client:
        lease_id = _acquire(client, environment, wait_s)
        holder = SlotHolder(
            environment, run_id, os.getpid(), socket.gethostname(), str(lease_id),
            str(settings.api.url or ""), str(settings.home), process_start(os.getpid()),
        )  # fmt: skip
        _write_holder(holder)
        stop = threading.Event()
        # in a copy of our context: Prefect settings given as a temporary context reach it too
        renew = contextvars.copy_context().run
        renewer = threading.Thread(target=renew, args=(_renew, lease_id, stop), name="slot-lease")
        renewer.daemon = True
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join(timeout=5)
            _release_or_keep_note(client, holder)


def _acquire(client: Any, environment: str, wait_s: float) -> UUID:
    """Take the slot within ``wait_s``; free it first when its noted holder is dead."""
    deadline = time.monotonic() + wait_s
    freed_dead_holder = False
    while True:
        lease_id = _try_take(client, slot_name(environment))
        if lease_id is not None:
            return lease_id
        holder = read_holder(environment)
        if holder is not None and holder.dead() and not freed_dead_holder:
            log.warning("environment %r: freeing the slot of dead %s", environment, holder.describe())
            _free_dead_holder(client, holder)
            freed_dead_holder = True
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            raise PreflightError(_busy_message(environment, holder))
        time.sleep(min(_POLL_S if left < SLOT_WAIT_S else _LONG_POLL_S, left))


def _free_dead_holder(client: Any, holder: SlotHolder) -> None:
    from httpx import HTTPError

    try:
        release_holder(client, holder)
    except HTTPError as exc:  # the take that follows finds the slot taken and says how to recover
        log.warning("cannot free the slot of dead %s: %s", holder.describe(), exc)


def _busy_message(environment: str, holder: SlotHolder | None) -> str:
    name = slot_name(environment)
    if holder is None:
        return (
            f"environment {environment!r} already has a drill running (Prefect limit {name!r}, "
            "held from another machine or by a run this machine has no note of); "
            "if no drill runs there, run: bcdrill recover"
        )
    return (
        f"environment {environment!r} already has a drill running: {holder.describe()} holds "
        f"Prefect limit {name!r}; if that run is dead, run: bcdrill recover {holder.run_id}"
    )


def _try_take(client: Any, name: str) -> UUID | None:
    """One attempt: the new lease's id, or None when the slot is taken (HTTP 423).

    The lease says which limits it holds, and with what limit, but not whether they are active:
    a limit switched off (in Prefect's UI, say) is listed all the same and counts nothing, so a
    second drill would start beside the first. So after a take the limit itself is read (one
    more request). When it is not one active slot (the first drill on the environment, or
    someone changed, switched off or removed the limit), the lease holds nothing that keeps
    drills apart: it is given back, the limit is set back to one active slot and taken again."""
    lease_id, limits = _take(client, name)
    if lease_id is None or (limits.get(name) == 1 and _one_active_slot(client, name)):
        return lease_id
    client.release_concurrency_slots_with_lease(lease_id)
    _set_one_active_slot(client, name)
    lease_id, limits = _take(client, name)
    if lease_id is not None and not (limits.get(name) == 1 and _one_active_slot(client, name)):
        client.release_concurrency_slots_with_lease(lease_id)
        raise PreflightError(f"Prefect limit {name!r} is not one active slot after it was set ({limits})")
    return lease_id


def _one_active_slot(client: Any, name: str) -> bool:
    """True when the limit exists, is active and allows one slot."""
    limit = _read_limit(client, name)
    return limit is not None and bool(limit.active) and int(limit.limit) == 1


def _read_limit(client: Any, name: str) -> Any | None:
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        return None


def _set_one_active_slot(client: Any, name: str) -> None:
    """Create the limit as one active slot, or set it back to that (a switched-off one is logged)."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectAlreadyExists

    existing = _read_limit(client, name)
    if existing is None:
        with suppress(ObjectAlreadyExists):  # another drill created it meanwhile: set it below
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            return
    elif not existing.active:
        log.warning("Prefect limit %r was switched off; switched on again (one drill at a time)", name)
    client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=1, active=True))


def _take(client: Any, name: str) -> tuple[UUID | None, dict[str, int]]:
    from httpx import HTTPStatusError

    try:
        response = client.increment_concurrency_slots_with_lease(
            names=[name], slots=1, mode="concurrency", lease_duration=SLOT_LEASE_S
        )
    except HTTPStatusError as exc:
        if exc.response.status_code == 423:
            return None, {}
        raise PreflightError(f"cannot take Prefect limit {name!r}: {exc}") from exc
    body = response.json()
    limits = {str(limit["name"]): int(limit["limit"]) for limit in body.get("limits") or ()}
    return UUID(str(body["lease_id"])), limits


def _renew(lease_id: UUID, stop: threading.Event) -> None:
    """Renew the lease every third of its duration until told to stop (a blip is only logged).
    Its client is made at the first renewal: a shorter drill makes none."""
    if stop.wait(RENEW_EVERY_S):
        return
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        while True:
            try:
                client.renew_concurrency_lease(lease_id, lease_duration=SLOT_LEASE_S)
            except Exception as exc:
                log.warning("cannot renew the environment slot's lease: %s", exc)
            if stop.wait(RENEW_EVERY_S):
                return


def _release_or_keep_note(client: Any, holder: SlotHolder) -> None:
    """Release a drill's own slot as it ends. When Prefect cannot be told, the holder's note
    stays: the next run, or ``bcdrill recover``, frees the slot of this (by then dead) holder."""
    from httpx import HTTPError

    name = slot_name(holder.environment)
    try:
        _release(client, name, UUID(holder.lease_id), force=False)
    except HTTPError as exc:
        log.warning("cannot release Prefect limit %r (its holder's note stays): %s", name, exc)
    else:
        _forget_holder(holder)


def _release(client: Any, name: str, lease_id: UUID, *, force: bool) -> None:
    """Give the slot back by its lease; with ``force``, also reset a slot the server lost track of."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    known = _lease_known(client, lease_id) if force else True
    client.release_concurrency_slots_with_lease(lease_id)
    if force and not known and _active_slots(client, name) > 0:
        # the lease died with the server that held it: nothing else will ever free the slot
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))


def _lease_known(client: Any, lease_id: UUID) -> bool:
    from httpx import HTTPStatusError

    try:
        client.renew_concurrency_lease(lease_id, lease_duration=SLOT_LEASE_S)
    except HTTPStatusError as exc:
        if exc.response.status_code in (404, 410):
            return False
        raise
    return True


def _active_slots(client: Any, name: str) -> int:
    limit = _read_limit(client, name)
    return int(limit.active_slots) if limit is not None else 0


def release_holder(client: Any, holder: SlotHolder) -> None:
    """Free the slot a dead holder left taken, then forget the note (kept when Prefect could
    not be told: the error is raised)."""
    _release(client, slot_name(holder.environment), UUID(holder.lease_id), force=True)
    _forget_holder(holder)


def dead_holders(run_ids: set[str] | None = None) -> list[SlotHolder]:
    """Noted slot holders on this machine whose process is gone (only ``run_ids`` when given)."""
    locks = home() / "locks"
    holders = [read_holder(p.name.removesuffix(".slot.json")) for p in sorted(locks.glob("*.slot.json"))]
    return [h for h in holders if h is not None and h.dead() and (run_ids is None or h.run_id in run_ids)]


def release_dead_holders(run_ids: set[str] | None = None) -> list[SlotHolder]:
    """``recover``: free every environment slot a dead run still holds, each on the Prefect
    server that holds it (:func:`engine.orchestration.server.holder_api`); the holders freed."""
    found = dead_holders(run_ids)
    if not found:
        return []
    from httpx import HTTPError
    from prefect.client.orchestration import get_client

    from engine.orchestration.server import holder_api

    places: dict[tuple[str, str], list[SlotHolder]] = {}
    for holder in found:
        places.setdefault((holder.api_url, holder.prefect_home), []).append(holder)
    freed: list[SlotHolder] = []
    problems: list[str] = []
    for (api_url, prefect_home), holders in sorted(places.items()):
        try:
            with holder_api(api_url, prefect_home), get_client(sync_client=True) as client:
                for holder in holders:
                    release_holder(client, holder)
                    freed.append(holder)
        except (HTTPError, OSError, PreflightError) as exc:  # the notes stay; the next place is tried
            problems.append(str(exc))
    if problems:
        raise SlotsNotFreed(freed, problems)
    return freed


class SlotsNotFreed(PreflightError):
    """``recover`` could not free every dead run's slot: those it freed (``freed``), and why not
    the others (their notes stay, for the next ``recover``)."""

    def __init__(self, freed: list[SlotHolder], problems: list[str]) -> None:
        super().__init__(
            f"cannot free the Prefect environment slot of a dead run ({'; '.join(problems)}); "
            "run bcdrill recover again once Prefect answers"
        )
        self.freed = freed


__all__ = [
    "SLOT_LEASE_S",
    "SLOT_WAIT_S",
    "SlotHolder",
    "SlotsNotFreed",
    "dead_holders",
    "environment_slot",
    "read_holder",
    "release_dead_holders",
    "slot_name",
]
