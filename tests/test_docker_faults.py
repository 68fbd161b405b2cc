"""Contract test over every registered container fault action, on real containers.

Each action keeps the contract shipped in :mod:`engine.testing`: ``describe()`` and
``capture()`` have no side effects; inject changes the container; revert restores the captured
state exactly; a second revert changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import docker
import pytest

from engine import lab
from engine.faults.base import FaultAction, ResolvedTarget
from engine.model.types import frozen_mapping
from engine.plugins import FAULTS
from engine.spec.loader import load_environment
from engine.testing import FaultActionContract
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


class TestContainerFaults(FaultActionContract):
    """The shipped fault contract (engine.testing) over every registered container action."""

    @pytest.fixture(params=CONTAINER_ACTIONS)
    def fault(self, request: pytest.FixtureRequest, subject: tuple[Transports, Any]) -> FaultAction:
        name, container = request.param, subject[1]
        target = ResolvedTarget("subject", "container", container.id, container.name)
        action = FAULTS.get(name)(f"t-{name}", target, frozen_mapping(PARAMS[name]))
        assert container.name in action.describe().inject
        return action

    @pytest.fixture
    def transports(self, subject: tuple[Transports, Any]) -> Transports:
        return subject[0]

    def census(self, fault: FaultAction) -> Mapping[str, Any]:
        return _census(docker.from_env().containers.get(fault.target.ref))

    def heals_itself(self, fault: FaultAction) -> bool:
        return fault.name == "docker.restart"
