"""Docker over SSH through bcdrill's own verified connection — never the SDK's SSH handling.

``docker.url: ssh://USER@HOST`` names an entry of the environment's ``ssh_hosts`` (by name,
or by address and port). The connection is an :class:`~engine.transports.ssh.SshTransport`:
the pinned host key is verified before authentication and the host's connect deadline
applies. A private Unix socket (in a 0700 temporary folder) stands in for the remote daemon;
each connection the Docker SDK opens to it is relayed over a new SSH channel running
``docker system dial-stdio`` on the host (through ``sudo -n`` when the host entry says so),
which connects to the remote ``/var/run/docker.sock``. Each Docker API call keeps the
endpoint's own timeout.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import tempfile
import threading
from collections.abc import Mapping
from contextlib import suppress
from urllib.parse import urlsplit

import paramiko

from engine.errors import InputError, TransportError
from engine.logsetup import get_logger
from engine.model.types import SshHost
from engine.transports.ssh import SshTransport

__all__ = ["REMOTE_SOCKET", "SshDockerTunnel", "ssh_docker_host"]

log = get_logger(__name__)

REMOTE_SOCKET = "unix:///var/run/docker.sock"
_CHUNK = 65536


def ssh_docker_host(url: str, hosts: Mapping[str, SshHost]) -> SshHost:
    """The ``ssh_hosts`` entry an ``ssh://USER@HOST[:PORT]`` Docker URL names.

    ``HOST`` is an entry's name, or its address (with its port); ``USER`` must be its user.
    """
    parts = urlsplit(url)
    if parts.scheme != "ssh" or not parts.hostname:
        raise InputError(f"docker url {url!r} is not ssh://USER@HOST")
    try:
        port = parts.port
    except ValueError:
        raise InputError(f"docker url {url!r}: the port is not a number") from None
    if parts.path not in ("", "/"):
        raise InputError(f"docker url {url!r}: no path after the host (the remote socket is {REMOTE_SOCKET})")
    by_name = hosts.get(parts.hostname)
    matches = [by_name] if by_name is not None and port is None else []
    matches = matches or [
        h for h in hosts.values() if h.address == parts.hostname and (port is None or h.port == port)
    ]
    if len(matches) != 1:
        known = ", ".join(sorted(hosts)) or "none"
        what = "no" if not matches else "more than one"
        raise InputError(
            f"docker url {url!r}: {what} ssh_hosts entry named or addressed {parts.hostname!r} "
            f"(entries: {known}); the Docker host must be an SSH host with a pinned key"
        )
    host = matches[0]
    if parts.username is not None and parts.username != host.user:
        raise InputError(
            f"docker url {url!r}: user {parts.username!r} differs from "
            f"ssh_hosts.{host.name}.user {host.user!r}"
        )
    return host


class SshDockerTunnel:
    """A local Unix socket relayed to a remote Docker daemon over one verified SSH connection."""

    def __init__(self, ssh: SshTransport) -> None:
        self.ssh = ssh
        self._dir: str | None = None
        self._server: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def local_url(self) -> str:
        """``unix://…`` of the local socket (after :meth:`start`)."""
        if self._dir is None:
            raise TransportError("the Docker SSH tunnel is not started")
        return f"unix://{os.path.join(self._dir, 'docker.sock')}"

    def start(self) -> str:
        """Connect (verifying the host key), open the local socket; return its ``unix://`` URL."""
        with self._lock:
            if self._server is not None:
                return self.local_url
            self.ssh.connect()  # refuses an unknown or changed host key before authenticating
            self._dir = tempfile.mkdtemp(prefix="bcdrill-docker-ssh-")
            os.chmod(self._dir, 0o700)
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(os.path.join(self._dir, "docker.sock"))
            server.listen(16)
            server.settimeout(0.2)
            self._server = server
            accept = threading.Thread(target=self._accept, name="docker-ssh-accept", daemon=True)
            accept.start()
            self._threads.append(accept)
            log.debug("docker.ssh.tunnel", host=self.ssh.host.name)
            return self.local_url

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            relay = threading.Thread(target=self._relay, args=(conn,), name="docker-ssh-relay", daemon=True)
            relay.start()

    def _relay(self, conn: socket.socket) -> None:
        """Pump bytes between one local connection and one ``docker system dial-stdio`` channel."""
        try:
            chan = self.ssh.open_stream(["docker", "-H", REMOTE_SOCKET, "system", "dial-stdio"])
        except TransportError as exc:
            log.warning("docker.ssh.channel_failed", host=self.ssh.host.name, error=str(exc))
            conn.close()
            return
        try:
            _pump(conn, chan, self._stop)
        finally:
            # the SSH connection may be gone already (its owner closed it while the Docker SDK
            # still held this connection in its pool): nothing is left to close on its side
            with suppress(EOFError, OSError, paramiko.SSHException):
                chan.close()
            conn.close()

    def close(self) -> None:
        """Stop relaying and remove the local socket (the SSH connection belongs to its owner)."""
        with self._lock:
            self._stop.set()
            if self._server is not None:
                self._server.close()
                self._server = None
            for thread in self._threads:
                thread.join(timeout=1)
            self._threads.clear()
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None
            self._stop = threading.Event()


def _pump(conn: socket.socket, chan: paramiko.Channel, stop: threading.Event) -> None:
    """Relay until the remote side ends (the local side may half-close first)."""
    watch: list[socket.socket | paramiko.Channel] = [conn, chan]
    try:
        while not stop.is_set():
            readable, _, _ = select.select(watch, [], [], 0.2)
            if conn in readable:
                data = conn.recv(_CHUNK)
                if data:
                    chan.sendall(data)
                else:
                    watch.remove(conn)
                    chan.shutdown_write()
            if chan in readable:
                data = chan.recv(_CHUNK)
                if not data:
                    return
                conn.sendall(data)
    except OSError:
        return
