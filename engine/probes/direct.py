"""Where a container really listens: its own address instead of the published loopback port.

Probing a published port goes through Docker's userland proxy, which, while the container
starts, forwards the probe to an address whose veth is not wired yet; the host's ARP retry
then stalls the connection for about a second and the recovery reads ~1 s late (NOTES.md,
"the ARP artefact"). An HTTP probe of a container target therefore talks to the container's
address and private port directly whenever the URL is a loopback port that the container
publishes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import PreflightError, TransportError
from engine.transports.connections import Transports


@dataclass(frozen=True)
class DirectAddress:
    """The container's own address and port for one published port (``ip`` empty while the
    container is not running)."""

    container: str
    ip: str
    port: int


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and 127.0.0.0/8 (and ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def private_port(attrs: Mapping[str, Any], host_port: int) -> int | None:
    """The container port published as ``host_port``, None when it publishes no such port."""
    ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    for private, bindings in ports.items():
        for binding in bindings or ():
            if str(binding.get("HostPort")) == str(host_port):
                return int(str(private).split("/", 1)[0])
    return None


def container_ip(attrs: Mapping[str, Any]) -> str:
    """The container's first network address ("" when it is not running)."""
    if not (attrs.get("State") or {}).get("Running"):
        return ""
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    for network in networks.values():
        ip = str((network or {}).get("IPAddress") or "")
        if ip:
            return ip
    return ""


class DirectResolver:
    """Resolves a published loopback port of one container to its own address, per check.

    The private port is learned on the first lookup that finds the container running (the
    steady state is checked before any fault), and kept: a stopped container publishes no
    ports, yet the probe still knows where the service would be.
    """

    def __init__(self, transports: Transports, container: str, host_port: int) -> None:
        self._transports = transports
        self._container = container
        self._host_port = host_port
        self._port: int | None = None
        self._not_published = False

    def resolve(self) -> DirectAddress | None:
        """The direct address now; None when the port is not this container's (probe the URL)."""
        if self._not_published:
            return None
        try:
            attrs = self._transports.docker.container(self._container).attrs
        except PreflightError:  # no Docker endpoint in the environment: probe the URL
            self._not_published = True
            return None
        except TransportError:
            return DirectAddress(self._container, "", self._port or 0) if self._port else None
        if self._port is None:
            if not (attrs.get("State") or {}).get("Running"):
                return None  # not learned yet: use the URL this time
            self._port = private_port(attrs, self._host_port)
            if self._port is None:
                self._not_published = True
                return None
        return DirectAddress(self._container, container_ip(attrs), self._port)
