"""Contract test over every registered container fault action, on real containers.

For each action: ``describe()`` has no side effects; inject changes the container; revert
restores the captured state exactly; a second revert changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from engine import lab
from engine.faults.base import ResolvedTarget
from engine.model.types import frozen_mapping
from engine.plugins import FAULTS
from engine.spec.loader import load_environment
from engine.transports.connections import Transports

pytestmark = pytest.mark.docker

NETWORK = "bcdrill-contract"
PARAMS: dict[str, dict[str, Any]] = {
    "docker.stop": {"timeout": 0},
    "docker.kill": {"signal": "SIGKILL"},
    "docker.pause": {},
    "docker.restart": {"timeout": 0},
    "docker.disconnect": {"network": NETWORK},
    "docker.crash_restore": {"path": "/tmp/orders.log", "backup": "/tmp/orders.backup"},
    "docker.exec": {
        "command": ["touch", "/tmp/fault-marker"],
        "revert": ["rm", "-f", "/tmp/fault-marker"],
        "check": ["sh", "-c", "! test -e /tmp/fault-marker"],
    },
}
CONTAINER_ACTIONS = sorted(n for n, cls in FAULTS.items() if cls.target_kind == "container")


def test_every_container_action_is_covered() -> None:
    assert set(CONTAINER_ACTIONS) == set(PARAMS)


@pytest.fixture(scope="module")
def subject(lab_env: Path) -> Iterator[tuple[Transports, Any]]:
    client = docker.from_env()
    network = client.networks.create(NETWORK, labels={lab.LABEL: "contract"})
    container = client.containers.run(
        lab.IMAGE,
        ["sh", "-c", "echo 1 > /tmp/orders.log; echo 1 > /tmp/orders.backup; exec sleep 3600"],
        name="bcdrill-contract-subject",
        detach=True,
        labels={lab.LABEL: "contract"},
        network=NETWORK,
    )
    transports = Transports(load_environment(lab_env))
    yield transports, container
    transports.close()
    container.remove(force=True)
    network.remove()


def _census(container: Any) -> dict[str, Any]:
    container.reload()
    state = container.attrs["State"]
    exit_code, marker = (
        container.exec_run(["ls", "/tmp"]) if state["Running"] and not state["Paused"] else (None, b"")
    )
    return {
        "running": state["Running"],
        "paused": state["Paused"],
        "networks": sorted(container.attrs["NetworkSettings"]["Networks"]),
        "tmp": marker.decode() if exit_code == 0 else None,
    }


@pytest.mark.parametrize("action_name", CONTAINER_ACTIONS)
def test_inject_then_revert_restores_prior_state(action_name: str, subject: tuple[Transports, Any]) -> None:
    transports, container = subject
    target = ResolvedTarget("subject", "container", container.id, container.name)
    action = FAULTS.get(action_name)(f"t-{action_name}", target, frozen_mapping(PARAMS[action_name]))
    before = _census(container)

    plan = action.describe()
    assert container.name in plan.inject and plan.revert
    assert _census(container) == before  # describe() touched nothing

    prior = action.capture(transports)
    assert _census(container) == before  # capture() is read-only
    action.inject(transports, prior)
    if action_name != "docker.restart":  # a restart heals itself; the others must be visible
        assert _census(container) != before
    action.revert(transports, prior)
    assert _census(container) == before
    assert action.is_reverted(transports, prior)
    action.revert(transports, prior)  # idempotent
    assert _census(container) == before
