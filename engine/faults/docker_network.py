"""Cut a container off a Docker network; revert reconnects it with its former aliases."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from engine.errors import InjectionError
from engine.faults.base import FaultAction, FaultPlan
from engine.transports.connections import Transports


class DisconnectNetwork(FaultAction):
    """Disconnect a container from one network (``docker network disconnect``)."""

    name = "docker.disconnect"
    target_kind = "container"
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["network"],
        "properties": {"network": {"type": "string", "minLength": 1}},
    }

    def _network_name(self) -> str:
        return str(self.params["network"])

    def describe(self) -> FaultPlan:
        """The disconnect and the reconnect."""
        net, label = self._network_name(), self.target.label
        return FaultPlan(
            self.fault_id,
            self.name,
            self.target,
            inject=f"docker network disconnect {net} {label}",
            revert=f"docker network connect {net} {label}",
        )

    def capture(self, transports: Transports) -> dict[str, Any]:
        """Record the container id, whether it is on the network, and its aliases there."""
        container = transports.docker.container(self.target.ref)
        networks = container.attrs.get("NetworkSettings", {}).get("Networks", {})
        settings = networks.get(self._network_name())
        if settings is None:
            raise InjectionError(
                f"container {self.target.label!r} is not on network {self._network_name()!r}"
            )
        aliases = [a for a in settings.get("Aliases") or [] if not container.id.startswith(a)]
        return {"id": container.id, "network": self._network_name(), "aliases": aliases}

    def _connected(self, transports: Transports, prior: Mapping[str, Any]) -> bool:
        container = transports.docker.container(prior["id"])
        return prior["network"] in container.attrs.get("NetworkSettings", {}).get("Networks", {})

    def inject(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        """Disconnect."""
        network = transports.docker.call(
            "network lookup", transports.docker.client.networks.get, prior["network"]
        )
        transports.docker.call("network disconnect", network.disconnect, prior["id"])  # type: ignore[attr-defined]

    def revert(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        """Reconnect, unless already connected."""
        if self._connected(transports, prior):
            return
        network = transports.docker.call(
            "network lookup", transports.docker.client.networks.get, prior["network"]
        )
        transports.docker.call(
            "network connect",
            network.connect,  # type: ignore[attr-defined]
            prior["id"],
            aliases=list(prior["aliases"]) or None,
        )

    def is_reverted(self, transports: Transports, prior: Mapping[str, Any]) -> bool:
        """Connected again."""
        return self._connected(transports, prior)

    def manual_revert(self, prior: Mapping[str, Any]) -> str:
        """The docker CLI reconnect."""
        return f"docker network connect {prior['network']} {prior['id']}"
