"""The Docker Engine of an environment, with a deadline on every call.

``docker`` SDK calls block on HTTP; the client's ``timeout`` bounds each request. ``exec``
has no server-side timeout (docker-py #2651), so commands are wrapped in ``timeout N`` inside
the container. Containers are always addressed by id once resolved.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import docker
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container
from docker.tls import TLSConfig

from engine.errors import CommandTimedOut, PreflightError, TransportError
from engine.logsetup import get_logger
from engine.model.types import DockerEndpoint

if TYPE_CHECKING:
    from engine.transports.docker_ssh import SshDockerTunnel

log = get_logger(__name__)

TIMEOUT_EXIT = 124  # what `timeout` returns when it had to stop the command


@dataclass(frozen=True)
class ExecResult:
    """Result of a command run inside a container."""

    exit_code: int
    output: str


class DockerTransport:
    """A Docker client bound to one endpoint; construction connects lazily on first call."""

    def __init__(self, endpoint: DockerEndpoint, tunnel: SshDockerTunnel | None = None) -> None:
        self.endpoint = endpoint
        self.tunnel = tunnel  # for ssh:// endpoints: bcdrill's own verified SSH connection
        self._client: docker.DockerClient | None = None

    @property
    def client(self) -> docker.DockerClient:
        """The SDK client (created on first use)."""
        if self._client is None:
            tls: TLSConfig | bool = False
            if self.endpoint.tls_verify:
                tls = TLSConfig(ca_cert=self.endpoint.ca_cert, verify=True)
            url = self.tunnel.start() if self.tunnel is not None else self.endpoint.url
            try:
                self._client = docker.DockerClient(
                    base_url=url, timeout=int(self.endpoint.timeout_s), tls=tls
                )
            except DockerException as exc:
                raise PreflightError(f"cannot reach Docker Engine at {self.endpoint.url!r}: {exc}") from exc
        return self._client

    def ping(self) -> None:
        """Raise :class:`PreflightError` unless the engine answers."""
        try:
            self.client.ping()
        except (DockerException, OSError) as exc:
            raise PreflightError(f"Docker Engine at {self.endpoint.url!r} does not answer: {exc}") from exc

    def container(self, name_or_id: str) -> Container:
        """Look a container up; :class:`TransportError` when it does not exist."""
        try:
            return self.client.containers.get(name_or_id)
        except NotFound:
            raise TransportError(f"container {name_or_id!r} not found") from None
        except (APIError, DockerException, OSError) as exc:
            raise TransportError(f"docker: looking up {name_or_id!r} failed: {exc}") from exc

    def call(self, what: str, fn: object, *args: object, **kwargs: object) -> object:
        """Run one SDK call, turning every Docker or socket error into :class:`TransportError`."""
        try:
            return fn(*args, **kwargs)  # type: ignore[operator]
        except (APIError, DockerException, OSError) as exc:
            raise TransportError(f"docker: {what} failed: {exc}") from exc

    def exec(self, container_id: str, argv: Sequence[str], timeout_s: float) -> ExecResult:
        """Run ``argv`` in the container, stopped by ``timeout`` inside the container."""
        wrapped = ["timeout", str(max(1, round(timeout_s))), *argv]
        container = self.container(container_id)
        log.debug("docker.exec", container=container_id[:12], argv=shlex.join(argv))
        result: Any = self.call("exec", container.exec_run, wrapped, demux=False)
        exit_code, output = result.exit_code, result.output
        text = (output or b"").decode(errors="replace")
        if exit_code == TIMEOUT_EXIT:
            raise CommandTimedOut(
                f"command {shlex.join(argv)!r} in container {container_id[:12]} "
                f"did not finish within {timeout_s:g}s"
            )
        return ExecResult(int(exit_code), text)

    def event_times(self, container_id: str, since: float, until: float) -> list[tuple[str, int]]:
        """``(action, timeNano)`` of the daemon's events for one container between two unix
        times (the daemon's own clock), oldest first. The daemon answers from its recent
        event buffer and closes the stream at ``until``."""
        api = self.client.api
        stream: Any = self.call(
            "events",
            api.events,
            since=f"{since:.6f}",
            until=f"{until:.6f}",
            filters={"container": container_id, "type": "container"},
            decode=True,
        )
        try:
            return [
                (str(e.get("Action") or e.get("status") or ""), int(e["timeNano"]))
                for e in stream
                if isinstance(e, dict) and "timeNano" in e
            ]
        except (APIError, DockerException, OSError, ValueError) as exc:
            raise TransportError(f"docker: reading events of {container_id[:12]} failed: {exc}") from exc

    def close(self) -> None:
        """Close the HTTP session (and the SSH tunnel's local socket)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.tunnel is not None:
            self.tunnel.close()
