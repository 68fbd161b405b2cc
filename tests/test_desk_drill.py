"""A real drill with its desk: Docker lab, real DrillRun, headless Chromium over CDP, webhooks.

One drill (storefront-down, time-scaled) is driven end to end like real people would: a
participant opens their link in Chromium and clicks "done"; others ack through the JSON API
at known moments; a scripted service desk sends a signed ticket; the MSP's mitigation ends
the fault. Then: attribution, latency, the controller's ``watch``, and a census proving no
token or secret leaked into any log, journal or report.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from drills.desk.client import post_ack
from drills.desk.participants import Card, ParticipantStore
from drills.desk.service import desk_url
from drills.desk.webhooks import correlation_code, sign
from engine import logsetup
from engine.errors import InputError
from engine.home import home
from engine.model.types import Participant
from engine.plugins import resolve_parts
from engine.record.runstore import create_run_dir, new_run_id, request_abort
from engine.run.runner import DrillRun, RunOptions, RunResult
from engine.spec.loader import load_environment, load_playbook
from engine.testing import free_port, wait_until
from tests.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.conftest import BCDRILL, LAB_NAME, REPO
from tests.journal_helpers import records
from tests.truth import IndependentProber

PLAYBOOK = REPO / "playbooks" / "storefront-down.yaml"
SCALE = 0.05  # 5 minutes become 15 s: room for a browser, bounded if something hangs
HOOK_SECRET = "sd-hook-" + "x9" * 12
LATENCY_LIMIT_S = 0.050
STOREFRONT = f"bcdrill-{LAB_NAME}-storefront"

pytestmark = [pytest.mark.docker]


# ---------------------------------------------------------------- a tiny CDP client


class Chromium:
    """Headless Debian chromium driven over the Chrome DevTools Protocol (one page)."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM, "install Debian's chromium: apt-get install -y chromium"
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                *CHROMIUM_FLAGS,
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        active = profile / "DevToolsActivePort"
        wait_until(
            "chromium's DevTools port", lambda: active.exists() and active.read_text().strip(), 30, 0.05
        )
        port = int(active.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
            targets = json.loads(response.read())
        page = next(t for t in targets if t["type"] == "page")
        self.ws: ClientConnection = connect(page["webSocketDebuggerUrl"], max_size=None)
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer (events seen meanwhile are kept)."""
        ident = next(self._ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=20))
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self.events.append(message)

    def wait_event(self, method: str, timeout_s: float = 20) -> dict[str, Any]:
        """The next event called ``method`` (clears the kept events up to it)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for index, event in enumerate(self.events):
                if event.get("method") == method:
                    del self.events[: index + 1]
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {method} within {timeout_s}s")
            self.events.append(json.loads(self.ws.recv(timeout=remaining)))

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page and return its JSON value."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def click(self, selector: str) -> dict[str, float]:
        """Click the element's centre with real mouse events; returns its box."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView();"
            " const r = e.getBoundingClientRect();"
            " return {x: r.x + r.width / 2, y: r.y + r.height / 2, w: r.width, h: r.height}; })()"
        )
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left", clickCount=1
            )
        return dict(box)

    def close(self) -> None:
        """Close the socket and end the browser process."""
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


# ---------------------------------------------------------------- the drill


class LiveDrill:
    """A DrillRun in a background thread with the desk on a loopback port."""

    def __init__(self, env_path: Path, runs: Path) -> None:
        playbook = load_playbook(PLAYBOOK)
        self.environment = load_environment(env_path)
        self.run_dir = create_run_dir(new_run_id(playbook.id), runs)
        self.drill = DrillRun(
            playbook,
            self.environment,
            self.run_dir,
            RunOptions(responders="manual", desk=f"127.0.0.1:{free_port()}", time_scale=SCALE),
            resolve_parts("manual", desk=True),
        )
        self.result: list[RunResult] = []
        self.thread = threading.Thread(target=lambda: self.result.append(self.drill.execute()), daemon=True)

    def recorded(self, step: str) -> dict[str, Any] | None:
        """The step.recorded record of ``step``, if any."""
        found = [
            r for r in records(self.run_dir) if r["type"] == "step.recorded" and r["data"]["step"] == step
        ]
        return found[0] if found else None

    def wait_recorded(self, step: str, timeout_s: float = 20) -> dict[str, Any]:
        """Poll the journal until ``step`` is recorded."""
        return dict(wait_until(f"step {step}", lambda: self.recorded(step), timeout_s))


@pytest.fixture
def issued(lab_env: Path) -> Iterator[dict[str, Card]]:
    """Cards for the lab's participants (plus another client's), and the service-desk hook."""
    environment = load_environment(lab_env)
    cards = ParticipantStore(environment.client).issue(environment.participants, "http://x", reissue=True)
    (other,) = ParticipantStore("Other Co").issue(
        [Participant("Olga Other", "msp")], "http://x", reissue=True
    )
    hooks = home() / "webhooks" / "demo-bakery-ltd.yaml"
    hooks.parent.mkdir(parents=True, exist_ok=True)
    hooks.write_text(
        "format: desk-webhooks/v1\n"
        "hooks:\n"
        "  servicedesk:\n"
        "    secret: env:DESK_DRILL_HOOK_SECRET\n"
        "    step: client.report\n"
        '    match: {"ticket.subject": "{correlation}"}\n'
        "    time_field: ticket.created_at\n"
        "    by_field: ticket.requester\n"
    )
    os.environ["DESK_DRILL_HOOK_SECRET"] = HOOK_SECRET
    try:
        yield {**{c.participant.name: c for c in cards}, "other": other}
    finally:
        hooks.unlink()
        del os.environ["DESK_DRILL_HOOK_SECRET"]


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """Every log line of the drill (engine, drills, reports, uvicorn) at DEBUG, into one file."""
    path = tmp_path / "drill.log"
    handler = logging.FileHandler(path)
    handler.setLevel(logging.DEBUG)
    logsetup.configure(verbose=True, json_output=True)
    names = ["", *logsetup.PACKAGES, "uvicorn", "uvicorn.error", "uvicorn.access"]
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        for name in names:
            logging.getLogger(name).removeHandler(handler)
            logging.getLogger(name).setLevel(levels[name])
        handler.close()


def _typed_ack(live: LiveDrill, step: str, by: str) -> float:
    """``bcdrill ack`` typed now: the journaled time minus the moment it was typed (run seconds)."""
    typed = live.drill.clock.now()
    runs = str(live.run_dir.parent)
    acked = subprocess.run(
        [BCDRILL, "ack", live.run_dir.name, step, "--by", by, "--runs", runs], capture_output=True, text=True
    )
    assert acked.returncode == 0, acked.stderr
    recorded = live.wait_recorded(step)
    assert recorded["data"]["stamp"] == "client", recorded  # counted when typed, not on arrival
    return _counted_t(recorded) - typed


def _counted_t(recorded: dict[str, Any]) -> float:
    """The run time a step counts at: the sender's accepted stamp, else the receipt."""
    return float(recorded["data"].get("acted_t", recorded["t"]))


def _service_desk_ticket(base: str, run_id: str, requester: str, created_at: str) -> httpx.Response:
    """What the client's service desk tool sends when a ticket is created (signed)."""
    body = json.dumps(
        {
            "event": "ticket.created",
            "ticket": {
                "id": "SD-4711",
                "subject": f"Web shop not loading [{correlation_code(run_id)}]",
                "requester": requester,
                "created_at": created_at,
            },
        }
    ).encode()
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Bcdrill-Timestamp": stamp,
        "X-Bcdrill-Signature": sign(HOOK_SECRET.encode(), stamp, body),
        "X-Bcdrill-Delivery": "sd-delivery-1",
    }
    return httpx.post(f"{base}/hooks/servicedesk", content=body, headers=headers, timeout=5)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install -y chromium)")
def test_drill_desk_end_to_end(
    lab_env: Path,
    issued: dict[str, Card],
    log_file: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    live = LiveDrill(lab_env, tmp_path / "runs")
    with IndependentProber(STOREFRONT) as prober:  # the truth, kept outside the engine
        since = time.time()
        live.thread.start()
        browser: Chromium | None = None
        watcher: subprocess.Popen[str] | None = None
        watch_out = tmp_path / "watch.out"
        try:
            base = wait_until("the desk", lambda: desk_url(live.run_dir), 30)
            wait_until("the fault", lambda: live.drill.book.anchor is not None, 30)
            with open(watch_out, "w") as out:
                watcher = subprocess.Popen(
                    [BCDRILL, "watch", str(live.run_dir)], stdout=out, stderr=subprocess.STDOUT, text=True
                )

            # 1. a participant opens their link on a phone-sized screen and clicks "done"
            browser = Chromium(Path(tempfile.mkdtemp(dir=tmp_path, prefix="chromium-")))
            browser.call("Page.enable")
            browser.call(
                "Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=3, mobile=True
            )
            alex = issued["Alex Moreau"]
            browser.open(f"{base}/p/{alex.token}")
            assert browser.evaluate("location.href") == f"{base}/desk"  # the token left the URL
            assert browser.evaluate("document.cookie") == ""  # HttpOnly: no script can read the session
            history = browser.call("Page.getNavigationHistory")["entries"]
            assert all(alex.token not in entry["url"] for entry in history)
            assert "Alex Moreau" in browser.evaluate("document.body.innerText")
            box = browser.click('li[data-step="msp.acknowledge"] button')
            assert box["h"] >= 44 and box["w"] >= 300  # a thumb-sized button on a phone
            browser.wait_event("Page.loadEventFired")
            assert "Recorded: msp.acknowledge" in browser.evaluate("document.body.innerText")
            clicked = live.wait_recorded("msp.acknowledge")
            assert clicked["data"]["by"] == "Alex Moreau" and clicked["data"]["party"] == "msp"
            assert clicked["data"]["source"] == "desk"

            # 2. the client's service desk reports the outage through a signed webhook
            created = live.drill.clock.utc().isoformat()
            ticket = _service_desk_ticket(base, live.run_dir.name, "Priya Shah", created)
            assert ticket.status_code == 202 and ticket.json()["status"] == "recorded", ticket.text
            report = live.wait_recorded("client.report")
            assert report["data"]["source"] == "webhook" and report["data"]["by"] == "Priya Shah"
            assert report["data"]["party"] == "client" and "ticket created" in report["data"]["note"]

            # 3. acks sent at known moments — through the desk's API and typed as `bcdrill ack` —
            # are counted within 50 ms (the moment the scorecard counts: the client's stamp when
            # the engine believes it, else the ack's arrival at the desk)
            errors = {}
            with httpx.Client() as http:  # made beforehand: its TLS context alone takes ~0.1 s
                for name, step in (
                    ("Sam Lee", "msp.declare"),
                    ("Alex Moreau", "msp.inform-client"),
                    ("Priya Shah", "client.workaround"),
                ):
                    sent = live.drill.clock.now()
                    assert post_ack(base, issued[name].token, step, note="via API", client=http).recorded
                    recorded = live.wait_recorded(step)["data"]
                    errors[step] = float(recorded["acted_t"]) - sent
            errors["client.inform-director"] = _typed_ack(live, "client.inform-director", "Tom Becker")
            with capfd.disabled():  # the measured error, for the record
                shown = {k: round(v * 1e3, 1) for k, v in errors.items()}
                print(f"\nack error (counted t - sent t), ms: {shown}")
            assert all(-LATENCY_LIMIT_S < e < LATENCY_LIMIT_S for e in errors.values()), errors

            # 4. a forgery in the middle of the drill changes nothing
            with pytest.raises(InputError):
                post_ack(base, issued["Priya Shah"].token, "msp.mitigate")
            with pytest.raises(InputError):
                post_ack(base, issued["other"].token, "msp.mitigate")
            assert live.recorded("msp.mitigate") is None

            # 5. the MSP restarts the storefront themselves (restore: responders) and says so; the
            # probe records restore, the client confirms
            docker.from_env().containers.get(STOREFRONT).start()
            assert post_ack(base, issued["Sam Lee"].token, "mitigate").recorded
            restore = live.wait_recorded("msp.restore", timeout_s=30)
            assert restore["data"]["source"] == "probe"
            assert post_ack(base, issued["Tom Becker"].token, "client.confirm").recorded
            live.thread.join(timeout=60)
            assert not live.thread.is_alive(), "the drill did not end after every step was recorded"
            assert watcher.wait(timeout=15) == 0  # watch exits by itself at run.ended
        finally:
            if browser is not None:
                browser.close()
            if live.thread.is_alive():
                request_abort(live.run_dir, "test failed", "pytest")
                live.thread.join(timeout=60)
            if watcher is not None and watcher.poll() is None:
                watcher.kill()
                watcher.wait(timeout=5)

    (result,) = live.result
    assert result.exit_code in (0, 1), result.reason
    # in the same run: the outage the scorecard reports is the one an outside prober saw
    true_down, true_up = prober.outage(after=since)
    rto = json.loads((live.run_dir / "debrief.json").read_text())["objectives"]["rto"]
    assert abs(rto["actual_s"] - (true_up - true_down)) <= LATENCY_LIMIT_S, (rto, true_up - true_down)
    kinds = [r["type"] for r in records(live.run_dir)]
    assert kinds.index("fault.applied") < kinds.index("fault.reverted") and kinds[-1] == "run.ended"
    steps = {r["data"]["step"]: r["data"] for r in records(live.run_dir) if r["type"] == "step.recorded"}
    assert len(steps) == 9 and {d["party"] for d in steps.values()} == {"msp", "client"}
    assert steps["client.confirm"]["by"] == "Tom Becker"
    debrief_text = (live.run_dir / "debrief.json").read_text()
    assert "Alex Moreau" in debrief_text or "msp.acknowledge" in debrief_text
    watched = watch_out.read_text()
    assert "ENDED" in watched and "Alex Moreau" in watched

    # 6. census: no raw token or secret anywhere the drill wrote or logged
    captured = capfd.readouterr()
    secrets_ = [card.token for card in issued.values()] + [HOOK_SECRET]
    places = {
        "captured stdout": captured.out,
        "captured stderr": captured.err,
        "log file": log_file.read_text(),
        "watch output": watched,
    }
    for path in [*live.run_dir.rglob("*"), *(home() / "participants").rglob("*")]:
        if path.is_file():
            places[str(path)] = path.read_text(errors="replace")
    assert len(places["log file"]) > 0 and any(".jsonl" in p for p in places)
    leaks = [(where, i) for where, text in places.items() for i, s in enumerate(secrets_) if s in text]
    assert not leaks, leaks
