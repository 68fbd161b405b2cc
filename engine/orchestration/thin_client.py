"""``bcdrill run`` through the long-lived runner: submit, follow the journal, abort on Ctrl-C.

The command has validated everything before it gets here (bad input: exit 2, nothing
submitted). It then creates a flow run of the runner's deployment through Prefect's REST API
(plain HTTP(S), no Prefect import in the command: on loopback to the runner's own server; to a
configured one with the key, basic auth and CA file Prefect's client would use), prints each
journal record of the run as it is written, and returns the summary the served flow wrote to
``<home>/runner/results/<run id>.json`` — or raises the anticipated failure that stopped it.

Ctrl-C (SIGINT) asks the drill to abort the way ``bcdrill abort`` does (the drill reverts and
journals ``run.aborted``); before the run has a folder, or at a second Ctrl-C, the flow run is
cancelled through the API (the runner sends the drill SIGTERM: it reverts the same way). The
client keeps following until the run has ended, so the scorecard of the aborted run is shown.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import signal
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import RunnerError, ServedDrillError
from engine.orchestration.local_runner import (
    RunnerInfo,
    active_profile,
    live_runner,
    results_dir,
    runner_lock,
    wake_runner,
)
from engine.record.records import RecordType
from engine.record.runstore import owner_alive, request_abort
from engine.web import is_loopback

_FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
_STATE_EVERY_S = 1.0  # the flow run's state: for a run that ends without writing its result
_TICK_S = 0.05
_PICKUP_TIMEOUT_S = 60.0
_API_DOWN_LIMIT_S = 300.0  # the state poll failing this long while no result comes: give up
_BUSY = (502, 503, 504)
_BUSY_RETRY_S = 60.0  # a submitted run the runner has not taken by then: the runner is gone
_BUSY_FIRST_PAUSE_S = 0.02  # a busy answer is usually one write away from free: ask again soon
_BUSY_MAX_PAUSE_S = 0.5


Printer = Callable[[Mapping[str, Any]], None]


def _api(info: RunnerInfo, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
    """One call to the runner's Prefect API; a busy server (503: its SQLite database is locked
    under load, e.g. right after it started) is asked again for up to :data:`_BUSY_RETRY_S`."""
    deadline = time.monotonic() + _BUSY_RETRY_S
    pause = _BUSY_FIRST_PAUSE_S
    while True:
        try:
            return _call(info, method, path, body)
        except urllib.error.HTTPError as exc:
            if exc.code not in _BUSY or time.monotonic() >= deadline:
                raise RunnerError(
                    f"the bcdrill runner's Prefect API at {info.url} answered {exc.code}: {exc.reason}"
                ) from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RunnerError(
                f"the bcdrill runner's Prefect API at {info.url} did not answer: {exc}"
            ) from exc
        time.sleep(pause)
        pause = min(pause * 2, _BUSY_MAX_PAUSE_S)


def _call(info: RunnerInfo, method: str, path: str, body: Mapping[str, Any] | None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - the runner's API: its own, or the configured one
        f"{info.url.rstrip('/')}/{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **_credentials()},
    )
    with _opener(info.url).open(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


_CLIENT_SETTINGS = ("PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PREFECT_API_SSL_CERT_FILE")


@functools.cache
def _settings() -> dict[str, str]:
    """The Prefect settings this client needs, as the command's Prefect would read them
    (environment, else the active profile): read once per command, not per request."""
    profile = active_profile()
    found = {name: os.environ.get(name) or profile.get(name) for name in _CLIENT_SETTINGS}
    return {name: str(value) for name, value in found.items() if value}


def _credentials() -> dict[str, str]:
    """What Prefect's own client sends a secured API (a configured server the runner uses):
    ``PREFECT_API_KEY`` as a bearer token, else ``PREFECT_API_AUTH_STRING`` as basic auth."""
    settings = _settings()
    if "PREFECT_API_KEY" in settings:
        return {"Authorization": f"Bearer {settings['PREFECT_API_KEY']}"}
    if "PREFECT_API_AUTH_STRING" in settings:
        return {
            "Authorization": "Basic "
            + base64.b64encode(settings["PREFECT_API_AUTH_STRING"].encode()).decode()
        }
    return {}


@functools.cache
def _opener(url: str) -> urllib.request.OpenerDirector:
    """Loopback: never through a proxy; else the proxies of the environment, as Prefect's client.
    HTTPS is verified against ``PREFECT_API_SSL_CERT_FILE`` when set, else the system's CAs."""
    loopback = is_loopback(urllib.parse.urlsplit(url).hostname or "")
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})] if loopback else []
    if url.startswith("https:"):
        context = ssl.create_default_context(cafile=_settings().get("PREFECT_API_SSL_CERT_FILE"))
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers)


def submit(parameters: Mapping[str, Any]) -> tuple[RunnerInfo, str]:
    """Create the flow run on the live runner; (runner, flow run id)."""
    with runner_lock(exclusive=False):  # the runner does not leave idle meanwhile
        info = live_runner()
        if info is None:
            raise RunnerError("the bcdrill runner stopped before the drill was submitted; run it again")
        flow_run = _api(
            info, "POST", f"deployments/{info.deployment_id}/create_flow_run", {"parameters": parameters}
        )
    wake_runner()
    return info, str(flow_run["id"])


def result_file(run_id: str) -> Path:
    """Where the served flow writes the summary of ``run_id``."""
    return results_dir() / f"{run_id}.json"


@dataclass
class _Follow:
    """Following one submitted run."""

    info: RunnerInfo
    flow_run_id: str
    run_dir: Path
    printer: Printer
    notice: Callable[[str], None]
    interrupts: int = 0
    offset: int = 0
    pending: bytes = b""
    state: Mapping[str, Any] = field(default_factory=dict)
    submitted_at: float = field(default_factory=time.monotonic)
    api_down_since: float | None = None
    journal_ended: bool = False


def follow(
    info: RunnerInfo, flow_run_id: str, run_dir: Path, printer: Printer, notice: Callable[[str], None]
) -> dict[str, Any]:
    """Print the run's journal until its flow run ends; its summary (or raise its failure)."""
    run = _Follow(info, flow_run_id, run_dir, printer, notice)
    # SIGINT aborts the drill as it does in the command (--in-process), even when this command
    # was started with SIGINT ignored (`bcdrill run … &` in a script): then `kill -INT` still works.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return _follow_to_the_end(run)
    finally:
        signal.signal(signal.SIGINT, previous)


def _follow_to_the_end(run: _Follow) -> dict[str, Any]:
    done = result_file(run.run_dir.name)  # written by the drill's process as it returns
    next_state = time.monotonic() + _STATE_EVERY_S
    while True:
        try:
            _print_new_records(run)
            if done.exists() or (time.monotonic() >= next_state and _ended(run)):
                _print_new_records(run)
                return _outcome(run)
            if time.monotonic() >= next_state:
                next_state = time.monotonic() + _STATE_EVERY_S
            time.sleep(_TICK_S)
        except KeyboardInterrupt:
            _interrupt(run)


def _print_new_records(run: _Follow) -> None:
    journal = run.run_dir / "journal.jsonl"
    try:
        with open(journal, "rb") as handle:
            handle.seek(run.offset)
            chunk = handle.read()
    except FileNotFoundError:
        return
    run.offset += len(chunk)
    *lines, run.pending = (run.pending + chunk).split(b"\n")
    for line in lines:
        try:
            record = json.loads(line)
            run.journal_ended = run.journal_ended or record.get("type") == RecordType.RUN_ENDED
            run.printer(record)
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # progress only: the journal itself is checked by the drill and `verify`


def _ended(run: _Follow) -> bool:
    """True once the flow run is final. The poll is the fallback for a run that ends without
    its result file: one that fails while the runner lives is a blip, not the drill's end (the
    client's exit would abort the drill); only a runner gone, or an API down for
    :data:`_API_DOWN_LIMIT_S`, ends the follow."""
    try:
        run.state = _api(run.info, "GET", f"flow_runs/{run.flow_run_id}").get("state") or {}
    except RunnerError:
        now = time.monotonic()
        run.api_down_since = run.api_down_since or now
        if run.info.alive() and now - run.api_down_since < _API_DOWN_LIMIT_S:
            return False
        raise
    run.api_down_since = None
    kind = run.state.get("type")
    if (
        kind == "SCHEDULED"
        and time.monotonic() - run.submitted_at > _PICKUP_TIMEOUT_S
        and not run.info.alive()
    ):
        raise RunnerError("the bcdrill runner stopped before it took the drill; run it again")
    return kind in _FINAL


def _outcome(run: _Follow) -> dict[str, Any]:
    path = result_file(run.run_dir.name)
    try:
        result: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        message = run.state.get("message") or run.state.get("name") or "no message"
        raise RunnerError(f"the drill's flow run ended {run.state.get('type')}: {message}") from None
    path.unlink(missing_ok=True)
    if "error" in result:
        raise ServedDrillError(str(result["error"]), int(result["exit_code"]))
    return result


def _interrupt(run: _Follow) -> None:
    """Ctrl-C: abort the drill (it reverts); a second one also cancels the flow run. A run the
    runner has not taken yet is cancelled outright; a drill whose journal has ended is only
    writing its scorecard, which is left to finish."""
    run.interrupts += 1
    if run.interrupts == 1 and owner_alive(run.run_dir):
        request_abort(run.run_dir, "interrupted (Ctrl-C in bcdrill run)", os.environ.get("USER", "operator"))
        run.notice(
            "interrupted: the drill is aborting and reverting its faults "
            "(Ctrl-C again to cancel its flow run in Prefect)"
        )
        return
    if run.journal_ended:
        run.notice("interrupted: the drill has ended and reverted; its scorecard is being written")
        return
    taken = (_api(run.info, "GET", f"flow_runs/{run.flow_run_id}").get("state") or {}).get("type")
    final = "CANCELLED" if taken == "SCHEDULED" else "CANCELLING"  # nothing to stop: no process yet
    _api(
        run.info,
        "POST",
        f"flow_runs/{run.flow_run_id}/set_state",
        {"state": {"type": final, "message": "interrupted in bcdrill run"}, "force": True},
    )
    run.notice("interrupted: the drill's flow run is being cancelled; it reverts before it ends")


__all__ = ["follow", "result_file", "submit"]
