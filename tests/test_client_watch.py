"""The drill submitted by a command aborts when that command dies (engine.orchestration.client_watch),
with real processes; the end-to-end case (kill -9 of ``bcdrill run``) is in test_local_runner."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

from engine.orchestration.client_watch import abort_when_gone
from engine.record.runstore import abort_requested


def _watches() -> int:
    return sum(t.name == "client-watch" for t in threading.enumerate())


def test_the_death_of_the_command_asks_the_drill_to_abort(tmp_path: Path) -> None:
    command = subprocess.Popen(["sleep", "30"])
    try:
        with abort_when_gone(command.pid, tmp_path):
            assert abort_requested(tmp_path) is None
            command.kill()
            command.wait()
            deadline = time.monotonic() + 2.0
            while abort_requested(tmp_path) is None and time.monotonic() < deadline:
                time.sleep(0.01)
            request = abort_requested(tmp_path)
    finally:
        command.kill()
    assert request is not None and str(command.pid) in request["reason"] and request["by"] == "runner"


def test_the_watch_ends_the_moment_the_drill_does_and_aborts_nothing(tmp_path: Path) -> None:
    command = subprocess.Popen(["sleep", "30"])
    try:
        with abort_when_gone(command.pid, tmp_path):
            assert _watches() == 1
            time.sleep(0.05)
            leaving = time.monotonic()
        took = time.monotonic() - leaving
    finally:
        command.kill()
        command.wait()
    assert took < 0.05, f"the watch held the drill's end {took * 1000:.0f} ms"
    assert _watches() == 0 and abort_requested(tmp_path) is None


def test_a_command_already_gone_aborts_at_once(tmp_path: Path) -> None:
    command = subprocess.Popen(["true"])
    command.wait()
    with abort_when_gone(command.pid, tmp_path):
        deadline = time.monotonic() + 2.0
        while abort_requested(tmp_path) is None and time.monotonic() < deadline:
            time.sleep(0.01)
    assert abort_requested(tmp_path) is not None
