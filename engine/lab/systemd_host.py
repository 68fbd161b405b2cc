"""A realistic lab host: Debian 12 with systemd as PID 1, openssh, nginx, PostgreSQL and Samba.

The root filesystem is built once with ``mmdebstrap`` from Debian packages, imported into
Docker as :data:`IMAGE` and reused while that image exists. A host runs with only what
systemd needs (the host's cgroup tree read-only, tmpfs on ``/run``, ``/run/lock`` and
``/tmp``; no extra capabilities). Each container generates its own SSH host keys at first
boot; the lab reads the public key through ``docker exec`` (a trusted channel) and pins it
in the environment file. Drills reach it as the sudo user :data:`USER` with the lab's
generated client key, and service faults stop real systemd units.

Every ``host_up`` also lays out the client's estate the scenarios need (idempotent, at run
time, so the cached image stays as it is): the :data:`ORDERS_DB` database and its scheduled
backup — the ``orders-backup`` systemd timer running ``pg_dump`` into :data:`BACKUP_FILE`
(the unit :data:`BACKUP_UNIT` can also be started by hand for a backup now), and the file
share's ``tar`` backup (:mod:`engine.lab.share_backup`). The lab's
PostgreSQL runs with ``fsync``, ``synchronous_commit`` and ``full_page_writes`` off: it is
disposable, and drills should not wait for a busy disk.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, NotFound

from engine.errors import PreflightError
from engine.lab import samba_ad, share_backup
from engine.lab.hosts import _client_key as client_key
from engine.logsetup import get_logger

__all__ = [
    "BACKUP_FILE",
    "BACKUP_UNIT",
    "BOOT_WAIT_S",
    "HOST_NAME",
    "IMAGE",
    "ORDERS_DB",
    "PACKAGES",
    "SERVICES",
    "USER",
    "SystemdHost",
    "authorize",
    "build_rootfs",
    "ensure_image",
    "exec_checked",
    "host_down",
    "host_up",
    "remove_container",
    "running_container",
    "ssh_entry",
    "wait_booted",
    "wait_port",
]

log = get_logger(__name__)

#: Bump the tag whenever what the image holds changes: images are cached per machine by tag.
IMAGE = "bcdrill-lab-systemd:3"
HOST_NAME = "sys1"
USER = "drill"
SUITE = "bookworm"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "sudo",
    "nginx-light",
    "postgresql",
    "samba",
    "smbclient",
    # The domain controller dc1 (engine.lab.samba_ad): same image, another host name.
    "samba-ad-dc",
    "samba-ad-provision",
    "krb5-user",
    "ldap-utils",
    "openssl",
)
#: The services declared on the host: name -> systemd unit.
SERVICES: dict[str, str] = {
    "nginx": "nginx.service",
    "postgresql": "postgresql@15-main.service",
    "samba": "smbd.service",
}
#: The staff file share: SMB share ``share``, guest access; no port is published (probes run
#: ``smbclient`` on the host over SSH, against its loopback).
SHARE_DIR = "/srv/share"
SHARE_FILES = {
    "welcome.txt": "Demo Bakery shared folder",
    "invoices/2027-0042.txt": "Invoice 2027-0042: 25 kg flour",
}
#: Directories faults may touch, per service (``host.encrypt_files`` needs its sandbox declared).
_SERVICE_PATHS: dict[str, dict[str, str]] = {"samba": {"share": SHARE_DIR}}
#: The client's order database on the host, and its scheduled backup (a pg_dump custom archive).
ORDERS_DB = "orders"
BACKUP_DIR = "/var/backups/orders"
BACKUP_FILE = f"{BACKUP_DIR}/orders.dump"
BACKUP_UNIT = "orders-backup.service"
BUILD_TIMEOUT_S = 1200.0  # 9.5 min seen for :3 (packages + domain provision) on a loaded machine
BOOT_WAIT_S = 90.0
LABEL = "bcdrill.lab"

# A oneshot unit that gives every container its own host keys before sshd starts.
_HOSTKEYS_UNIT = """[Unit]
Description=bcdrill: generate this host's SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
"""

# The client's nightly backup, every few minutes in the lab: dump to a side file, then rename,
# so a dump that fails (database gone during a drill) never replaces the last good one.
_BACKUP_SERVICE = f"""[Unit]
Description=Backup of the {ORDERS_DB} database (pg_dump)

[Service]
Type=oneshot
User=postgres
ExecStart=/bin/sh -c 'pg_dump --format=custom --file={BACKUP_FILE}.part {ORDERS_DB} && \\
    mv {BACKUP_FILE}.part {BACKUP_FILE}'
"""
_BACKUP_TIMER = """[Unit]
Description=Scheduled backup of the orders database

[Timer]
OnActiveSec=1min
OnUnitActiveSec=5min
AccuracySec=1s
"""
# $1 service unit text, $2 timer unit text. Idempotent: run at every ``host_up``.
_ESTATE = f"""set -e
install -d -o postgres -g postgres -m 0750 {BACKUP_DIR}
printf '%s' "$1" > /etc/systemd/system/{BACKUP_UNIT}
printf '%s' "$2" > /etc/systemd/system/{BACKUP_UNIT.replace(".service", ".timer")}
systemctl daemon-reload
systemctl start {BACKUP_UNIT.replace(".service", ".timer")}
for _ in $(seq 60); do pg_isready -q && break; sleep 0.5; done
# A disposable lab database: no waiting for a busy disk (DROP/CREATE DATABASE checkpoint).
for setting in "fsync = off" "synchronous_commit = off" "full_page_writes = off"; do
    runuser -u postgres -- psql -XAtq -d postgres -c "ALTER SYSTEM SET $setting"
done
runuser -u postgres -- psql -XAtq -d postgres -c "SELECT pg_reload_conf()" >/dev/null
exists=$(runuser -u postgres -- psql -XAtq -d postgres \\
    -c "SELECT 1 FROM pg_database WHERE datname = '{ORDERS_DB}'")
[ "$exists" = 1 ] || runuser -u postgres -- createdb {ORDERS_DB}
"""  # noqa: S608 - constants only

_CUSTOMIZE = [
    f'chroot "$1" useradd --create-home --shell /bin/bash {USER}',
    f"printf '%s\\n' '{USER} ALL=(ALL) NOPASSWD:ALL' > \"$1/etc/sudoers.d/{USER}\"",
    f'chmod 0440 "$1/etc/sudoers.d/{USER}"',
    'rm -f "$1"/etc/ssh/ssh_host_*',
    'printf \'%s\' "$BCDRILL_HOSTKEYS_UNIT" > "$1/etc/systemd/system/bcdrill-hostkeys.service"',
    "ln -sf /etc/systemd/system/bcdrill-hostkeys.service "
    '"$1/etc/systemd/system/multi-user.target.wants/bcdrill-hostkeys.service"',
    # Nothing a container cannot do: no getty on a console that is not there.
    'chroot "$1" systemctl mask getty@tty1.service console-getty.service systemd-udevd.service',
    "printf '%s\\n' 'bcdrill lab host' > \"$1/var/www/html/index.html\"",
    # Samba: a standalone file server with one guest share; no NetBIOS (the AD DC runs on dc1 only).
    'printf \'%s\' "$BCDRILL_SMB_CONF" > "$1/etc/samba/smb.conf"',
    'chroot "$1" systemctl mask nmbd.service',
    *(
        f'f="$1{SHARE_DIR}/{name}" && mkdir -p "$(dirname "$f")" && printf \'%s\\n\' \'{text}\' > "$f"'
        for name, text in SHARE_FILES.items()
    ),
    f'chroot "$1" chown -R nobody:nogroup {SHARE_DIR}',
    samba_ad.BUILD_HOOK,
]


_SMB_CONF = f"""[global]
   server role = standalone server
   map to guest = Bad User
   disable netbios = yes
   smb ports = 445
   server min protocol = SMB2
   log file = /var/log/samba/log.%m
   logging = file

[share]
   path = {SHARE_DIR}
   guest ok = yes
   read only = no
   force user = nobody
"""


@dataclass(frozen=True)
class SystemdHost:
    """A running systemd lab host: how to reach it and what it declares."""

    name: str
    container: str
    ssh_port: int
    http_port: int
    key_path: Path
    host_key: str

    @property
    def http_url(self) -> str:
        """nginx's page, published on the machine's loopback."""
        return f"http://127.0.0.1:{self.http_port}/"

    def environment_entry(self) -> dict[str, Any]:
        """The host's ``ssh_hosts`` entry: sudo user, pinned key, systemd services."""
        return ssh_entry(self.ssh_port, self.key_path, self.host_key, SERVICES, _SERVICE_PATHS)


def ssh_entry(
    ssh_port: int,
    key_path: Path,
    host_key: str,
    services: dict[str, str],
    paths: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """An ``ssh_hosts`` entry for a lab host of this image: the sudo user on a published
    loopback port, the pinned host key, and each service (name -> systemd unit) driven
    through ``systemctl``, with the directories faults may touch where declared."""
    paths = paths or {}
    return {
        "address": "127.0.0.1",
        "port": ssh_port,
        "user": USER,
        "key": f"file:{key_path}",
        "agent": False,
        "host_key": host_key,
        "sudo": True,
        "connect_timeout": "5s",
        "command_timeout": "30s",
        "services": {
            name: {
                "start": f"systemctl start {unit}",
                "stop": f"systemctl stop {unit}",
                "status": f"systemctl is-active --quiet {unit}",
                **({"paths": paths[name]} if name in paths else {}),
            }
            for name, unit in services.items()
        },
    }


def build_rootfs(tarball: Path) -> None:
    """Build the Debian root filesystem tarball with ``mmdebstrap`` (about a minute)."""
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise PreflightError("mmdebstrap is missing: install Debian's mmdebstrap (scripts/setup.sh does)")
    argv = [mmdebstrap, "--quiet", "--variant=minbase", f"--include={','.join(PACKAGES)}"]
    argv += [f"--customize-hook={hook}" for hook in _CUSTOMIZE]
    argv += [SUITE, str(tarball)]
    log.info("lab.systemd.build", image=IMAGE, packages=list(PACKAGES))
    env = {**os.environ, "BCDRILL_HOSTKEYS_UNIT": _HOSTKEYS_UNIT, "BCDRILL_SMB_CONF": _SMB_CONF}
    env.update(samba_ad.BUILD_ENV)
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, env=env)
    except subprocess.CalledProcessError as exc:
        tail = "\n".join((exc.stderr or "").splitlines()[-15:])
        raise PreflightError(f"mmdebstrap could not build the systemd lab host:\n{tail}") from exc
    except subprocess.TimeoutExpired as exc:
        raise PreflightError(f"mmdebstrap did not finish within {BUILD_TIMEOUT_S:g} s") from exc


def ensure_image(client: docker.DockerClient) -> str:
    """Build and import the systemd host image unless it exists already; return its id."""
    try:
        return str(client.images.get(IMAGE).id)
    except NotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="bcdrill-rootfs-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        build_rootfs(tarball)
        repo, tag = IMAGE.split(":")
        changes = ['CMD ["/sbin/init"]', "ENV container=docker"]
        try:
            client.api.import_image_from_file(str(tarball), repository=repo, tag=tag, changes=changes)
        except APIError as exc:
            raise PreflightError(f"cannot import the systemd host image: {exc.explanation or exc}") from exc
    return str(client.images.get(IMAGE).id)


def container_name(lab: str) -> str:
    """The Docker name of the lab's systemd host."""
    return f"bcdrill-{lab}-{HOST_NAME}"


def host_up(client: docker.DockerClient, lab: str, network: str, state_dir: Path) -> SystemdHost:
    """Start (or reuse) the lab's systemd host and return how to reach it. Idempotent."""
    ensure_image(client)
    name = container_name(lab)
    container = running_container(client, name, lambda: _run(client, lab, network, name))
    wait_booted(container)
    key = client_key(state_dir)
    authorize(container, Path(f"{key}.pub").read_text().strip())
    exec_checked(container, ["sh", "-c", _ESTATE, "sh", _BACKUP_SERVICE, _BACKUP_TIMER])
    exec_checked(container, share_backup.layout_argv(SHARE_DIR))
    host_key = exec_checked(container, ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"])
    container.reload()
    ports = container.attrs["NetworkSettings"]["Ports"]
    host = SystemdHost(
        name=HOST_NAME,
        container=name,
        ssh_port=int(ports["22/tcp"][0]["HostPort"]),
        http_port=int(ports["80/tcp"][0]["HostPort"]),
        key_path=key,
        host_key=" ".join(host_key.split()[:2]),
    )
    wait_port(host.ssh_port)
    log.info("lab.systemd.up", lab=lab, container=name, ssh_port=host.ssh_port)
    return host


def host_down(client: docker.DockerClient, lab: str) -> bool:
    """Remove the lab's systemd host; True when there was one."""
    return remove_container(client, container_name(lab))


def running_container(client: docker.DockerClient, name: str, start: Callable[[], Any]) -> Any:
    """The named lab host's container if it runs; else a new one from ``start()`` (a stopped
    one is removed first)."""
    try:
        container = client.containers.get(name)
    except NotFound:
        return start()
    if container.status == "running":
        return container
    container.remove(force=True)
    return start()


def remove_container(client: docker.DockerClient, name: str) -> bool:
    """Remove a lab host's container; True when there was one."""
    try:
        client.containers.get(name).remove(force=True)
    except NotFound:
        return False
    return True


def _run(client: docker.DockerClient, lab: str, network: str, name: str) -> Any:
    try:
        return client.containers.run(
            IMAGE,
            name=name,
            hostname=HOST_NAME,
            detach=True,
            stop_signal="SIGRTMIN+3",  # systemd's clean shutdown
            labels={LABEL: lab},
            network=network,
            volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "ro"}},
            tmpfs={"/run": "", "/run/lock": "", "/tmp": ""},  # noqa: S108 - inside the container
            ports={"22/tcp": ("127.0.0.1", None), "80/tcp": ("127.0.0.1", None)},
        )
    except APIError as exc:
        raise PreflightError(f"cannot start the systemd lab host {name}: {exc.explanation or exc}") from exc


def exec_checked(container: Any, argv: list[str]) -> str:
    code, output = container.exec_run(argv)
    text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
    if code != 0:
        raise PreflightError(f"on {container.name}: {' '.join(argv)} failed ({code}): {text.strip()}")
    return text


def wait_booted(container: Any) -> None:
    """Wait until systemd says the system is running (degraded is reported, not fatal)."""
    deadline = time.monotonic() + BOOT_WAIT_S
    state = "unknown"
    while time.monotonic() < deadline:
        container.reload()
        if container.status != "running":
            logs = container.logs(tail=20).decode(errors="replace")
            raise PreflightError(f"the systemd lab host {container.name} stopped while booting:\n{logs}")
        _, output = container.exec_run(["systemctl", "is-system-running"])
        state = output.decode(errors="replace").strip() if isinstance(output, bytes) else str(output)
        if state in ("running", "degraded"):
            if state == "degraded":
                failed = exec_checked(container, ["systemctl", "--failed", "--no-legend", "--plain"])
                log.warning("lab.systemd.degraded", container=container.name, failed=failed.strip())
            return
        time.sleep(0.5)
    raise PreflightError(f"the systemd lab host {container.name} did not boot in {BOOT_WAIT_S:g} s ({state})")


def authorize(container: Any, public_key: str) -> None:
    home = f"/home/{USER}/.ssh"
    script = (
        f'install -d -m 700 -o {USER} -g {USER} {home} && printf "%s\\n" "$1" > {home}/authorized_keys '
        f"&& chown {USER}:{USER} {home}/authorized_keys && chmod 600 {home}/authorized_keys"
    )
    exec_checked(container, ["sh", "-c", script, "sh", public_key])


def wait_port(port: int, timeout: float = 20.0) -> None:
    """Wait until sshd answers with its banner on the published port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise PreflightError(f"sshd of the systemd lab host does not answer on 127.0.0.1:{port}")
