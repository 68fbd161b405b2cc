"""Connections to the staging systems of one environment, opened lazily and reused.

Creating a :class:`Transports` connects to nothing; the first use of ``docker`` or
``ssh(name)`` does, with the deadlines from the environment file.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from engine.errors import PreflightError
from engine.model.types import Environment

if TYPE_CHECKING:
    from engine.transports.docker import DockerTransport
    from engine.transports.ssh import SshTransport


class Transports:
    """The Docker and SSH connections of one environment."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self._docker: DockerTransport | None = None
        self._ssh: dict[str, SshTransport] = {}
        self._lock = threading.Lock()

    @property
    def docker(self) -> DockerTransport:
        """The Docker Engine of the environment (connects on first use)."""
        with self._lock:
            if self._docker is None:
                from engine.transports.docker import DockerTransport

                endpoint = self.environment.docker
                if endpoint is None:
                    raise PreflightError(f"environment {self.environment.name!r} has no 'docker' endpoint")
                tunnel = None
                if endpoint.url.startswith("ssh://"):  # through our own verified SSH connection
                    from engine.transports.docker_ssh import SshDockerTunnel, ssh_docker_host

                    host = ssh_docker_host(endpoint.url, self.environment.hosts)
                    tunnel = SshDockerTunnel(self._ssh_locked(host.name))
                self._docker = DockerTransport(endpoint, tunnel)
            return self._docker

    def ssh(self, host_name: str) -> SshTransport:
        """The SSH connection to ``host_name`` (connects and verifies the host key on first use)."""
        with self._lock:
            return self._ssh_locked(host_name)

    def _ssh_locked(self, host_name: str) -> SshTransport:
        transport = self._ssh.get(host_name)
        if transport is None:
            from engine.transports.ssh import SshTransport

            host = self.environment.hosts.get(host_name)
            if host is None:
                raise PreflightError(f"environment {self.environment.name!r} has no SSH host {host_name!r}")
            transport = SshTransport(host)
            self._ssh[host_name] = transport
        return transport

    def close(self) -> None:
        """Close every open connection."""
        with self._lock:
            if self._docker is not None:  # first: an ssh:// Docker endpoint relays over an SSH connection
                self._docker.close()
                self._docker = None
            for transport in self._ssh.values():
                transport.close()
            self._ssh.clear()
