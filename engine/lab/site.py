"""The local lab: a few labelled staging containers (and SSH hosts) made offline.

No registry is reachable, so the lab image is a ``docker import`` of a root filesystem built
here from Debian's ``busybox-static`` (httpd, sh, sleep, timeout…). Everything the lab creates
carries the label ``bcdrill.lab=<name>`` and is removed by that label. Idempotent.
"""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import yaml
from docker.errors import DockerException, NotFound

from engine.errors import PreflightError
from engine.home import lab_dir
from engine.lab import domain_controller, hosts, services, systemd_host
from engine.lab.hosts import host_prefix
from engine.logsetup import get_logger

log = get_logger(__name__)

IMAGE = "bcdrill-lab:1"
LABEL = "bcdrill.lab"
BUSYBOX = Path("/bin/busybox")
APPLETS = (
    "sh",
    "httpd",
    "sleep",
    "timeout",
    "cat",
    "echo",
    "ls",
    "kill",
    "ps",
    "date",
    "rm",
    "mkdir",
    "touch",
    "true",
    "false",
    "wget",
)
DOCKERD_WAIT_S = 30.0


@dataclass(frozen=True)
class LabService:
    """One lab container: its role name, the page it serves and its published URL."""

    role: str
    page: str
    health_path: str


SERVICES: tuple[LabService, ...] = (
    LabService("storefront", "<h1>Demo Bakery storefront</h1>\n", "/"),
    LabService("api", '{"status":"ok"}\n', "/health"),
)


def docker_url() -> str:
    """The Docker endpoint the lab uses (``DOCKER_HOST`` or the local socket)."""
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def ensure_dockerd(state_dir: Path) -> docker.DockerClient:
    """Return a client of a Docker Engine that answers, starting ``dockerd`` if none does."""
    client = _try_client()
    if client is not None:
        return client
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "dockerd.log"
    log.info("lab.dockerd.start", log=str(log_path))
    with open(log_path, "ab") as out:
        try:
            subprocess.Popen(["dockerd"], stdout=out, stderr=out, start_new_session=True)
        except OSError as exc:
            raise PreflightError(f"no Docker Engine answers and dockerd cannot start: {exc}") from exc
    deadline = time.monotonic() + DOCKERD_WAIT_S
    while time.monotonic() < deadline:
        client = _try_client()
        if client is not None:
            return client
        time.sleep(0.2)
    raise PreflightError(f"dockerd did not answer within {DOCKERD_WAIT_S:g}s; see {log_path}")


def _try_client() -> docker.DockerClient | None:
    try:
        client = docker.DockerClient(base_url=docker_url(), timeout=10)
        client.ping()
        return client
    except (DockerException, OSError):
        return None


def _rootfs_tar() -> bytes:
    """A tiny root filesystem: static busybox, its applets, and web roots for the services."""
    if not BUSYBOX.exists():
        raise PreflightError(f"{BUSYBOX} is missing: install Debian's busybox-static")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for folder in ("bin", "tmp", "www", "data", "proc", "sys", "dev", "etc"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        tar.add(str(BUSYBOX), arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return buf.getvalue()


def ensure_image(client: docker.DockerClient) -> str:
    """Import the lab image once; return its id."""
    try:
        return str(client.images.get(IMAGE).id)
    except NotFound:
        pass
    repo, tag = IMAGE.split(":")
    client.api.import_image_from_data(
        _rootfs_tar(), repository=repo, tag=tag, changes=["ENV PATH=/bin", 'CMD ["/bin/sh"]']
    )
    return str(client.images.get(IMAGE).id)


def _start_service(client: docker.DockerClient, lab: str, network: str, svc: LabService) -> Any:
    script = (
        f"mkdir -p /www && printf %s {shlex.quote(svc.page)} > /www/index.html && "
        f"cp /www/index.html /www/health 2>/dev/null; exec httpd -f -p 80 -h /www"
    )
    return services.ensure_container(client, lab, network, svc.role, script, True, IMAGE, LABEL)


def _published_url(container: Any, path: str) -> str:
    container.reload()
    binding = container.attrs["NetworkSettings"]["Ports"]["80/tcp"][0]
    return f"http://127.0.0.1:{binding['HostPort']}{path}"


_SYSTEMD_HOSTS = (systemd_host.HOST_NAME, domain_controller.HOST_NAME)


def up(name: str = "lab", hosts: int = 2, systemd: bool = False) -> Path:
    """Bring the lab up (idempotent) and return the path of its environment file.

    ``systemd`` adds the realistic host ``sys1`` (Debian 12, systemd, sshd, nginx, PostgreSQL;
    its image is built once with mmdebstrap, see :mod:`engine.lab.systemd_host`) and the Samba
    AD domain controller ``dc1`` from the same image (:mod:`engine.lab.domain_controller`).
    """
    state = lab_dir(name)
    state.mkdir(parents=True, exist_ok=True)
    client = ensure_dockerd(state)
    ensure_image(client)
    network = f"bcdrill-{name}"
    # Docker's ``names`` filter matches a prefix too ("bcdrill-rn" finds "bcdrill-rnx"): compare exactly
    if not any(n.name == network for n in client.networks.list(names=[network])):
        client.networks.create(network, labels={LABEL: name})
    urls: dict[str, str] = {}
    for svc in SERVICES:
        container = _start_service(client, name, network, svc)
        urls[svc.role] = _published_url(container, svc.health_path)
    services.wait_until_serving(urls)
    host_entries, host_urls = _hosts_up(state, name, hosts)
    urls.update(host_urls)

    extras = services.services_up(client, name, network, state, host_entries, IMAGE, LABEL)
    urls.update(extras.urls)
    if systemd:
        sys_host = systemd_host.host_up(client, name, network, state)
        host_entries[sys_host.name] = sys_host.environment_entry()
        urls[f"{sys_host.name}-web"] = sys_host.http_url
        dc = domain_controller.host_up(client, name, network, state)
        host_entries[dc.name] = dc.environment_entry()
    env_path = state / "environment.yaml"
    env_path.write_text(_environment_yaml(name, urls, host_entries, extras.targets))
    log.info("lab.up", lab=name, environment=str(env_path))
    return env_path


def _hosts_up(state: Path, name: str, count: int) -> tuple[dict[str, Any], dict[str, str]]:
    """SSH hosts in network namespaces: their environment entries and web URLs."""
    if count <= 0:
        return {}, {}
    prefix, octet = host_prefix(name)
    started = hosts.hosts_up(state, count, prefix, octet=octet)
    return {h.name: h.environment_entry() for h in started}, {f"{h.name}-web": h.http_url for h in started}


def _environment_yaml(
    name: str, urls: dict[str, str], hosts: dict[str, Any], extra_targets: Mapping[str, Any]
) -> str:
    targets: dict[str, Any] = {svc.role: {"containers": [f"bcdrill-{name}-{svc.role}"]} for svc in SERVICES}
    targets.update(extra_targets)
    if hosts:
        # The busybox hosts only: the systemd hosts declare other services (nginx, identity…).
        plain = sorted(h for h in hosts if h not in _SYSTEMD_HOSTS)
        if plain:
            targets["hosts"] = {"hosts": plain}
        for host_name in sorted(hosts):
            targets[host_name] = {"hosts": [host_name]}
    env: dict[str, Any] = {
        "format": "environment/v1",
        "name": name,
        "kind": "test",
        "client": "Demo Bakery Ltd",
        "docker": {"url": docker_url(), "timeout": "10s"},
        "targets": targets,
        "participants": [
            {
                "name": "Alex Moreau",
                "party": "msp",
                "role": "on-call engineer",
                "contact": "alex@msp.example",
            },
            {
                "name": "Sam Lee",
                "party": "msp",
                "role": "service delivery manager",
                "contact": "sam@msp.example",
            },
            {
                "name": "Priya Shah",
                "party": "client",
                "role": "shop manager",
                "contact": "priya@bakery.example",
            },
            {
                "name": "Tom Becker",
                "party": "client",
                "role": "managing director",
                "contact": "tom@bakery.example",
            },
        ],
        "urls": urls,
    }
    if hosts:
        env["ssh_hosts"] = hosts
    header = f"# Written by `bcdrill lab up` for the local lab {name!r}. Regenerated on every lab up.\n"
    return header + yaml.safe_dump(env, sort_keys=False)


def down(name: str = "lab") -> list[str]:
    """Remove every container and network labelled for this lab; return what was removed."""
    client = _try_client()
    removed: list[str] = []
    if client is not None:
        for container in client.containers.list(all=True, filters={"label": f"{LABEL}={name}"}):
            container.remove(force=True)
            removed.append(container.name)
        for network in client.networks.list(filters={"label": f"{LABEL}={name}"}):
            network.remove()
            removed.append(f"network {network.name}")
    state = lab_dir(name)
    if (state / "hosts").exists():
        hosts.hosts_down(state, host_prefix(name)[0])
        removed.append("ssh hosts")
    services.services_down(name)
    return removed


def status(name: str = "lab") -> dict[str, str]:
    """Each lab container's state, by name (empty when the lab is down)."""
    client = _try_client()
    if client is None:
        return {}
    return {c.name: c.status for c in client.containers.list(all=True, filters={"label": f"{LABEL}={name}"})}
