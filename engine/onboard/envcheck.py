"""``bcdrill env check``: connect to every system of an environment and say, row by row, what works.

Read-only: SSH hosts are reached with their pinned keys (a changed key is refused before
authentication, as in a drill), then sudo, each declared service's status command, the Docker
endpoint and the containers bound to targets, and each named URL are tried once. Nothing is
changed on any system.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from engine.errors import DrillError
from engine.faults.host_base import declared_service
from engine.model.types import Environment, SshHost
from engine.transports.connections import Transports
from engine.transports.ssh import HostKeyRejected, SshTransport, parse_host_key

__all__ = ["CheckRow", "Status", "check_environment"]

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class CheckRow:
    """One thing checked: which system, what was tried, how it went and why."""

    subject: str
    check: str
    status: Status
    detail: str


def check_environment(environment: Environment, url_timeout_s: float = 5.0) -> list[CheckRow]:
    """Every check of ``environment``, in file order: SSH hosts, Docker, URLs."""
    transports = Transports(environment)
    try:
        rows: list[CheckRow] = []
        for host in environment.hosts.values():
            rows += _host_rows(host, transports.ssh(host.name))
        if environment.docker is not None:
            rows += _docker_rows(environment, transports)
        rows += [_url_row(name, url, url_timeout_s) for name, url in environment.urls.items()]
        return rows
    finally:
        transports.close()


# ---------------------------------------------------------------- SSH hosts


def _host_rows(host: SshHost, ssh: SshTransport) -> Iterator[CheckRow]:
    subject = f"host {host.name}"
    try:
        ssh.connect()
    except HostKeyRejected as exc:
        yield CheckRow(
            subject, "host key", "fail", f"{exc} (if the key changed on purpose: bcdrill env keyscan)"
        )
        return
    except DrillError as exc:
        yield CheckRow(subject, "connect", "fail", str(exc))
        return
    pin = f"pinned {parse_host_key(host.host_key).fingerprint}" if host.host_key else "from known_hosts"
    yield CheckRow(subject, "host key", "ok", f"verified ({pin})")
    yield CheckRow(subject, "login", "ok", f"{host.user}@{host.address}:{host.port} authenticated")
    yield _sudo_row(host, ssh)
    for name in host.services:
        yield _service_row(host, name, ssh)


def _sudo_row(host: SshHost, ssh: SshTransport) -> CheckRow:
    subject = f"host {host.name}"
    if host.sudo:
        try:
            result = ssh.run(["id", "-u"], sudo=True, check=False, timeout=10)
        except DrillError as exc:
            return CheckRow(subject, "sudo", "fail", str(exc))
        if result.ok and result.stdout.strip() == "0":
            return CheckRow(subject, "sudo", "ok", "sudo -n works without a password")
        why = (result.stderr or result.stdout).strip()[:200]
        return CheckRow(subject, "sudo", "fail", f"sudo -n refused ({why}): give {host.user} a NOPASSWD rule")
    try:
        uid = ssh.run(["id", "-u"], sudo=False, check=False, timeout=10).stdout.strip()
    except DrillError as exc:
        return CheckRow(subject, "root", "fail", str(exc))
    if uid == "0":
        return CheckRow(subject, "root", "ok", "logged in as root (no sudo needed)")
    return CheckRow(
        subject, "root", "warn", f"{host.user} is not root and sudo is off: faults that need root will fail"
    )


def _service_row(host: SshHost, name: str, ssh: SshTransport) -> CheckRow:
    subject = f"host {host.name}"
    try:
        service = declared_service(host, name)
        result = ssh.run(list(service.status), check=False, timeout=15)
    except DrillError as exc:
        return CheckRow(subject, f"service {name}", "fail", str(exc))
    if result.ok:
        return CheckRow(subject, f"service {name}", "ok", "running (status exits 0)")
    return CheckRow(subject, f"service {name}", "warn", f"not running: status exited {result.exit_code}")


# ---------------------------------------------------------------- Docker


def _docker_rows(environment: Environment, transports: Transports) -> Iterator[CheckRow]:
    assert environment.docker is not None
    subject = f"docker {environment.docker.url}"
    try:
        docker = transports.docker
        docker.ping()
        version = docker.client.version().get("Version", "?")
    except DrillError as exc:
        yield CheckRow(subject, "engine", "fail", str(exc))
        return
    except Exception as exc:  # the SDK raises several types for a daemon that answers oddly
        yield CheckRow(subject, "engine", "fail", f"{type(exc).__name__}: {exc}")
        return
    yield CheckRow(subject, "engine", "ok", f"Docker Engine {version} answers")
    for binding in environment.targets.values():
        if binding.kind != "container":
            continue
        for name in binding.refs:
            try:
                status = docker.container(name).status
            except DrillError as exc:
                yield CheckRow(subject, f"container {name}", "fail", f"target {binding.name}: {exc}")
                continue
            state: Status = "ok" if status == "running" else "warn"
            yield CheckRow(subject, f"container {name}", state, f"target {binding.name}: {status}")


# ---------------------------------------------------------------- URLs


def _url_row(name: str, url: str, timeout_s: float) -> CheckRow:
    parts = urlsplit(url)
    conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(parts.hostname or "", parts.port, timeout=timeout_s)
    try:
        conn.request("GET", parts.path or "/", headers={"Connection": "close"})
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return CheckRow(f"url {name}", "GET", "fail", f"{url}: {type(exc).__name__}: {exc}")
    finally:
        conn.close()
    state: Status = "ok" if status < 400 else "warn"
    return CheckRow(f"url {name}", "GET", state, f"{url}: HTTP {status}")
