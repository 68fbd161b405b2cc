"""Python-provider activities for the Chaos Toolkit side of the benchmark (runs in .venv-ctk).

The same calls bcdrill makes: docker SDK kill/start by container name, and an HTTP probe
polled every 20 ms (the bcdrill scenario's probe interval) until 200 or a deadline. Only the
lab's own container and 127.0.0.1 are touched.
"""

from __future__ import annotations

import time
import urllib.request

import docker

_client = None


def _docker():
    global _client
    if _client is None:
        _client = docker.from_env(timeout=10)
    return _client


def healthy(url: str) -> bool:
    """True when ``url`` answers 200 within 200 ms."""
    try:
        with urllib.request.urlopen(url, timeout=0.2) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


def kill(container: str) -> None:
    """docker kill (SIGKILL)."""
    _docker().api.kill(container)


def start(container: str) -> None:
    """docker start, only when the container is not running (idempotent, like a revert)."""
    state = _docker().api.inspect_container(container)["State"]
    if not state.get("Running"):
        _docker().api.start(container)


def wait_healthy(url: str, timeout: float = 30.0, interval: float = 0.02) -> bool:
    """Poll ``url`` until it answers 200 (bounded by ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(url):
            return True
        time.sleep(interval)
    return False
