"""The lab's Samba AD domain controller ``dc1``: the staff's sign-in, on a real systemd host.

``dc1`` runs the systemd lab image (:data:`engine.lab.systemd_host.IMAGE`) under another host
name: there ``samba-ad-dc.service`` serves the domain :data:`~engine.lab.samba_ad.REALM`
provisioned at image build time (LDAP, LDAPS, Kerberos), and the file server's units (nginx,
PostgreSQL, smbd) are masked on systemd's command line. It is reached like ``sys1``: SSH as
the sudo user ``drill`` with the lab's client key and a pinned host key, the DC declared as
the service ``identity``. Nothing is provisioned at run time: ``host_up`` only boots the
container and waits until the staff user can sign in (``kinit``).
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import structlog
from docker.errors import APIError

from engine.errors import PreflightError
from engine.lab import samba_ad
from engine.lab.hosts import _client_key as client_key
from engine.lab.systemd_host import (
    IMAGE,
    LABEL,
    authorize,
    ensure_image,
    exec_checked,
    remove_container,
    running_container,
    ssh_entry,
    wait_booted,
    wait_port,
)

__all__ = [
    "HOST_NAME",
    "SERVICES",
    "SIGN_IN_WAIT_S",
    "DomainController",
    "container_name",
    "host_down",
    "host_up",
]

log = structlog.get_logger(__name__)

HOST_NAME = samba_ad.HOST_NAME
#: The services declared on the DC: name -> systemd unit.
SERVICES: dict[str, str] = {"identity": samba_ad.UNIT}
SIGN_IN_WAIT_S = 60.0
# The file server's units: present in the image, not wanted on a domain controller.
_MASKED = ("nginx.service", "postgresql.service", "postgresql@15-main.service", "smbd.service")
# What the lab checks before it hands the DC over: the staff user signs in both ways the
# playbooks' probes do, a Kerberos ticket and an LDAPS simple bind (Samba answers Kerberos a
# moment before it listens on 636).
_LDAPS_BIND = shlex.join(
    ["ldapsearch", "-x", "-H", f"ldaps://{samba_ad.FQDN}", "-D", samba_ad.STAFF_PRINCIPAL,
     "-y", samba_ad.PASSWORD_FILE, "-b", "DC=" + ",DC=".join(samba_ad.REALM.lower().split(".")),
     "-LLL", f"(sAMAccountName={samba_ad.STAFF_USER})", "dn"]
)  # fmt: skip
_SIGN_IN = (
    f"KRB5CCNAME=MEMORY: kinit {samba_ad.STAFF_PRINCIPAL} < {samba_ad.PASSWORD_FILE} > /dev/null"
    f" && {_LDAPS_BIND} > /dev/null"
)


@dataclass(frozen=True)
class DomainController:
    """A running domain controller: how to reach it and what it declares."""

    name: str
    container: str
    ssh_port: int
    key_path: Path
    host_key: str

    def environment_entry(self) -> dict[str, Any]:
        """The host's ``ssh_hosts`` entry: sudo user, pinned key, the ``identity`` service."""
        return ssh_entry(self.ssh_port, self.key_path, self.host_key, SERVICES)


def container_name(lab: str) -> str:
    """The Docker name of the lab's domain controller."""
    return f"bcdrill-{lab}-{HOST_NAME}"


def host_up(client: docker.DockerClient, lab: str, network: str, state_dir: Path) -> DomainController:
    """Start (or reuse) the lab's domain controller and return how to reach it. Idempotent."""
    ensure_image(client)
    name = container_name(lab)
    container = running_container(client, name, lambda: _run(client, lab, network, name))
    wait_booted(container)
    key = client_key(state_dir)
    authorize(container, Path(f"{key}.pub").read_text().strip())
    _wait_sign_in(container)
    host_key = exec_checked(container, ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"])
    container.reload()
    ports = container.attrs["NetworkSettings"]["Ports"]
    dc = DomainController(
        name=HOST_NAME,
        container=name,
        ssh_port=int(ports["22/tcp"][0]["HostPort"]),
        key_path=key,
        host_key=" ".join(host_key.split()[:2]),
    )
    wait_port(dc.ssh_port)
    log.info("lab.dc.up", lab=lab, container=name, ssh_port=dc.ssh_port, realm=samba_ad.REALM)
    return dc


def host_down(client: docker.DockerClient, lab: str) -> bool:
    """Remove the lab's domain controller; True when there was one."""
    return remove_container(client, container_name(lab))


def _run(client: docker.DockerClient, lab: str, network: str, name: str) -> Any:
    # systemd reads systemd.mask= from its own command line when it runs in a container.
    command = ["/sbin/init", *(f"systemd.mask={unit}" for unit in _MASKED)]
    try:
        return client.containers.run(
            IMAGE,
            command=command,
            name=name,
            hostname=HOST_NAME,
            domainname=samba_ad.REALM.lower(),  # /etc/hosts: dc1.bakery.lab, the LDAPS name
            detach=True,
            stop_signal="SIGRTMIN+3",  # systemd's clean shutdown
            labels={LABEL: lab},
            network=network,
            volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "ro"}},
            tmpfs={"/run": "", "/run/lock": "", "/tmp": ""},  # noqa: S108 - inside the container
            ports={"22/tcp": ("127.0.0.1", None)},
        )
    except APIError as exc:
        raise PreflightError(f"cannot start the domain controller {name}: {exc.explanation or exc}") from exc


def _wait_sign_in(container: Any) -> None:
    """Wait until the staff user gets a Kerberos ticket and binds over LDAPS (the DC serves)."""
    deadline = time.monotonic() + SIGN_IN_WAIT_S
    while time.monotonic() < deadline:
        code, _ = container.exec_run(["sh", "-c", _SIGN_IN])
        if code == 0:
            return
        time.sleep(0.5)
    state = exec_checked(container, ["sh", "-c", f"systemctl is-active {samba_ad.UNIT} || true"]).strip()
    raise PreflightError(
        f"the domain controller {container.name} does not sign the staff user in after "
        f"{SIGN_IN_WAIT_S:g} s ({samba_ad.UNIT}: {state})"
    )
