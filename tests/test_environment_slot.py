"""The environment's Prefect slot against a real Prefect server: taken, named, freed after a crash."""

from __future__ import annotations

import contextvars
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.errors import PreflightError
from engine.orchestration import slot
from engine.orchestration.slot import (
    dead_holders,
    environment_slot,
    read_holder,
    release_dead_holders,
    slot_name,
)

pytestmark = pytest.mark.prefect


@pytest.fixture
def environment(prefect_api: str) -> Iterator[str]:
    name = f"slot-{uuid.uuid4().hex[:8]}"
    yield name
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.delete_global_concurrency_limit_by_name(slot_name(name))


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _note(environment: str, run_id: str, pid: int, lease_id: str, **where: str) -> None:
    path = Path(os.environ["BCDRILL_HOME"]) / "locks" / f"{environment}.slot.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"run_id": run_id, "pid": pid, "host": socket.gethostname(), "lease_id": lease_id, **where}
    import json

    path.write_text(json.dumps(data))


def _take_without_us(environment: str, *, with_lease: bool) -> str:
    """Take the slot as another run would: with a lease, or (a lost lease) only the slot row."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    name = slot_name(environment)
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, 1)
        if with_lease:
            response = client.increment_concurrency_slots_with_lease(
                names=[name], slots=1, mode="concurrency", lease_duration=300
            )
            return str(response.json()["lease_id"])
        # the temporary server that held the lease died: the row says taken, no lease exists
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=1))
        return str(uuid.uuid4())


def _active(environment: str) -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return int(client.read_global_concurrency_limit_by_name(slot_name(environment)).active_slots)


def test_a_run_holds_the_slot_and_notes_itself_then_gives_both_back(environment: str) -> None:
    with environment_slot(environment, "run-a"):
        holder = read_holder(environment)
        assert holder is not None and (holder.run_id, holder.pid) == ("run-a", os.getpid())
        assert _active(environment) == 1
    assert _active(environment) == 0
    assert read_holder(environment) is None


def _limit(environment: str) -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return int(client.read_global_concurrency_limit_by_name(slot_name(environment)).limit)


def test_a_limit_changed_by_hand_is_set_back_to_one_drill(
    environment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(slot_name(environment), 3)
    monkeypatch.setattr(slot, "SLOT_WAIT_S", 0.2)
    with environment_slot(environment, "run-a"):
        assert (_limit(environment), _active(environment)) == (1, 1)
        with pytest.raises(PreflightError), environment_slot(environment, "run-b"):
            pytest.fail("two drills on one environment")
    assert _active(environment) == 0


def test_a_release_prefect_did_not_take_keeps_the_holders_note(
    environment: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without its note a slot still taken has no holder to free: recover would find nothing."""
    import httpx
    from prefect.client.orchestration import SyncPrefectClient

    release = SyncPrefectClient.release_concurrency_slots_with_lease

    def unreachable(self: SyncPrefectClient, lease_id: uuid.UUID) -> None:
        raise httpx.ConnectError("connection refused")

    with environment_slot(environment, "run-0"):
        pass  # the environment's limit exists from now on
    monkeypatch.setattr(SyncPrefectClient, "release_concurrency_slots_with_lease", unreachable)
    with environment_slot(environment, "run-a"):
        pass
    holder = read_holder(environment)
    assert holder is not None and holder.run_id == "run-a"
    assert _active(environment) == 1 and "cannot release" in caplog.text
    monkeypatch.setattr(SyncPrefectClient, "release_concurrency_slots_with_lease", release)
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        slot.release_holder(client, holder)
    assert (_active(environment), read_holder(environment)) == (0, None)


def test_a_limit_switched_off_by_hand_is_switched_on_and_keeps_drills_apart(
    environment: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An inactive limit is listed in the lease like an active one, but counts nothing."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=slot_name(environment), limit=1, active=False)
        )
    monkeypatch.setattr(slot, "SLOT_WAIT_S", 0.2)
    with environment_slot(environment, "run-a"):
        assert _active(environment) == 1
        with pytest.raises(PreflightError, match="run-a"), environment_slot(environment, "run-b"):
            pytest.fail("two drills on one environment")
    assert _active(environment) == 0
    assert "was switched off; switched on again" in caplog.text


def test_the_slot_of_a_known_environment_is_taken_in_two_requests(
    environment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import SyncPrefectClient

    with environment_slot(environment, "run-a"):
        pass  # the environment's limit exists from now on
    paths: list[str] = []
    request = SyncPrefectClient.request

    def counted(self: SyncPrefectClient, method: str, path: str, *args: object, **kwargs: object) -> object:
        paths.append(path)
        return request(self, method, path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SyncPrefectClient, "request", counted)
    with environment_slot(environment, "run-b"):
        assert paths == ["/v2/concurrency_limits/increment-with-lease", "/v2/concurrency_limits/{id_or_name}"]
        assert _active(environment) == 1


def test_a_run_renews_its_lease_while_it_holds_the_slot(
    environment: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from prefect.client.orchestration import SyncPrefectClient

    renewals: list[int] = []
    renew = SyncPrefectClient.renew_concurrency_lease

    def counted(self: SyncPrefectClient, *args: Any, **kwargs: Any) -> Any:
        response = renew(self, *args, **kwargs)
        renewals.append(response.status_code)
        return response

    monkeypatch.setattr(SyncPrefectClient, "renew_concurrency_lease", counted)
    monkeypatch.setattr(slot, "RENEW_EVERY_S", 0.2)
    with environment_slot(environment, "run-a"):
        deadline = time.monotonic() + 10
        while len(renewals) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(renewals) >= 2 and set(renewals) <= {200, 204}, renewals
    assert "cannot renew" not in caplog.text
    assert _active(environment) == 0


def test_a_second_run_is_told_which_run_holds_the_slot_and_how_to_recover(environment: str) -> None:
    with (
        environment_slot(environment, "run-a"),
        pytest.raises(PreflightError) as caught,
        environment_slot(environment, "run-b"),
    ):
        pytest.fail("two drills on one environment")
    message = str(caught.value)
    assert "run run-a (pid" in message and "bcdrill recover run-a" in message
    assert _active(environment) == 0


def test_a_drill_readied_early_waits_for_the_one_before_it_until_its_moment(
    environment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slot, "SLOT_WAIT_S", 0.5)  # a busy slot is otherwise waited for 0.5 s only
    taken = threading.Event()
    waited: list[float] = []

    def the_next_drill() -> None:
        taken.wait(30)
        started, moment = time.monotonic(), datetime.now(UTC) + timedelta(seconds=3)
        with environment_slot(environment, "run-b", wait_until=moment):
            waited.append(time.monotonic() - started)

    # the session's Prefect settings are context variables: the thread runs in a copy of ours
    follower = threading.Thread(target=contextvars.copy_context().run, args=(the_next_drill,))
    follower.start()
    with environment_slot(environment, "run-a"):  # the drill before it, still running…
        taken.set()
        time.sleep(1.5)  # …for longer than SLOT_WAIT_S
    follower.join(timeout=30)
    assert waited and 1.0 < waited[0] < 3.5, waited
    assert _active(environment) == 0


def test_the_next_run_frees_the_slot_a_dead_run_left_taken(environment: str) -> None:
    lease = _take_without_us(environment, with_lease=True)
    _note(environment, "killed-run", _dead_pid(), lease)
    with environment_slot(environment, "next-run"):  # no waiting for the 60 s lease
        assert read_holder(environment).run_id == "next-run"  # type: ignore[union-attr]
    assert _active(environment) == 0


def test_recover_frees_a_slot_whose_lease_died_with_a_temporary_server(environment: str) -> None:
    lease = _take_without_us(environment, with_lease=False)
    _note(environment, "killed-run", _dead_pid(), lease)
    assert [h.run_id for h in dead_holders({"killed-run"})] == ["killed-run"]
    assert dead_holders({"other-run"}) == []
    freed = release_dead_holders({"killed-run"})
    assert [h.environment for h in freed] == [environment]
    assert _active(environment) == 0 and read_holder(environment) is None


def test_a_live_holder_is_never_freed(environment: str) -> None:
    lease = _take_without_us(environment, with_lease=True)
    _note(environment, "live-run", os.getpid(), lease)
    assert release_dead_holders() == []
    assert _active(environment) == 1
    with (
        pytest.raises(PreflightError, match="bcdrill recover live-run"),
        environment_slot(environment, "next-run"),
    ):
        pass


@pytest.mark.docker
def test_a_run_on_a_held_environment_names_the_holder_in_one_line_and_exits_4(
    lab_env: Path, prefect_api: str, tmp_path: Path
) -> None:
    from engine.spec.loader import load_environment
    from tests.conftest import REPO, run_cli

    environment = load_environment(lab_env).name
    with environment_slot(environment, "the-other-run"):
        result = run_cli(
            "run",
            str(REPO / "playbooks" / "storefront-down.yaml"),
            "--env",
            str(lab_env),
            "--runs",
            str(tmp_path / "runs"),
            "--responders",
            "auto",
            "--time-scale",
            "0.005",
        )
    assert result.returncode == 4, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("bcdrill: "))
    assert "run the-other-run (pid" in line and "bcdrill recover the-other-run" in line
    assert not list((tmp_path / "runs").glob("*/journal.jsonl"))  # nothing started, nothing injected


def test_recover_says_so_in_one_line_when_prefect_does_not_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import run_cli

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{port}/api")
    environment = f"slot-{uuid.uuid4().hex[:8]}"
    _note(environment, "killed-run", _dead_pid(), str(uuid.uuid4()))
    try:
        result = run_cli("recover", "--runs", str(tmp_path / "runs"), timeout=120)
    finally:
        Path(os.environ["BCDRILL_HOME"], "locks", f"{environment}.slot.json").unlink()
    assert result.returncode == 4, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert line.startswith("bcdrill: cannot free the Prefect environment slot") and "recover again" in line


def test_recover_frees_a_slot_on_the_database_it_was_taken_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local runner is killed: its Prefect server dies with it, the slot its drill took stays
    taken in the runner's database. ``recover`` from a command whose own Prefect home is another
    one, with no runner up, frees the slot there — it freed it in its own database before and
    dropped the note, so the next drill through a new runner was refused for good."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from engine.orchestration.server import temporary_server
    from tests.conftest import run_cli

    runners_home, environment = tmp_path / "runner-prefect", f"slot-{uuid.uuid4().hex[:8]}"
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(runners_home))
    with temporary_server(settings_of_this_process=False) as url, temporary_settings({PREFECT_API_URL: url}):
        lease = _take_without_us(environment, with_lease=False)  # its lease died with the server
    where = {"api_url": url, "prefect_home": str(runners_home)}
    _note(environment, "killed-run", _dead_pid(), lease, **where)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "callers-prefect"))
    try:
        result = run_cli("recover", "--runs", str(tmp_path / "runs"), timeout=300)
    finally:
        Path(os.environ["BCDRILL_HOME"], "locks", f"{environment}.slot.json").unlink(missing_ok=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"killed-run: released the Prefect slot of environment {environment!r}" in result.stdout
    monkeypatch.setenv("PREFECT_HOME", str(runners_home))
    with temporary_server(settings_of_this_process=False) as url, temporary_settings({PREFECT_API_URL: url}):
        assert _active(environment) == 0


def test_recover_keeps_the_note_of_a_server_that_does_not_answer_and_frees_the_others(
    environment: str, prefect_api: str, tmp_path: Path
) -> None:
    """A slot taken on a server that is not bcdrill's own (not on loopback) and does not answer
    now is not "freed" elsewhere: its note stays for a later recover. The other dead runs'
    slots are freed all the same, and said."""
    from engine.orchestration.slot import SlotsNotFreed

    elsewhere = f"slot-{uuid.uuid4().hex[:8]}"  # 0.0.0.0: refused at once, nothing leaves the machine
    _note(elsewhere, "run-elsewhere", _dead_pid(), str(uuid.uuid4()),
          api_url="http://0.0.0.0:9/api", prefect_home=str(tmp_path / "nowhere"))  # fmt: skip
    lease = _take_without_us(environment, with_lease=False)
    _note(environment, "run-here", _dead_pid(), lease, api_url=prefect_api, prefect_home=str(tmp_path))
    try:
        with pytest.raises(SlotsNotFreed, match=r"http://0\.0\.0\.0:9/api does not answer") as raised:
            release_dead_holders({"run-elsewhere", "run-here"})
        assert [h.run_id for h in raised.value.freed] == ["run-here"]
        assert _active(environment) == 0 and read_holder(environment) is None
        assert read_holder(elsewhere) is not None  # kept for the next recover
    finally:
        Path(os.environ["BCDRILL_HOME"], "locks", f"{elsewhere}.slot.json").unlink(missing_ok=True)
