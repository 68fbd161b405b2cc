"""``docker.crash_restore``: a database container crashes; it comes back from its last backup.

Inject kills the container (SIGKILL: no clean shutdown). Revert is the recovery an MSP
would run: copy the backup file over the data file *while the container is stopped*
(Docker's archive API works on stopped containers), then start it. Writes made after the
last backup are lost — that is the point of the drill, and what the ``data`` probe measures.

Idempotent: once the container runs again the revert does nothing (a second restore would
throw away writes made since the first).
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from engine.errors import RevertError
from engine.faults.base import FaultAction, FaultPlan
from engine.transports.connections import Transports

_ABS_PATH = {"type": "string", "pattern": "^/[^\\0]*[^/]$"}


class CrashRestore(FaultAction):
    """Kill a container; revert restores ``path`` from ``backup`` (both inside it) and starts it."""

    name = "docker.crash_restore"
    target_kind = "container"
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["path", "backup"],
        "properties": {
            "path": {**_ABS_PATH, "description": "the data file inside the container"},
            "backup": {**_ABS_PATH, "description": "its last backup copy inside the container"},
        },
    }

    def describe(self) -> FaultPlan:
        """Kill, then restore-and-start."""
        label, path, backup = self.target.label, self.params["path"], self.params["backup"]
        return FaultPlan(
            self.fault_id,
            self.name,
            self.target,
            inject=f"docker kill --signal SIGKILL {label}",
            revert=f"docker cp {label}:{backup} → {label}:{path} (while stopped); docker start {label}",
        )

    def capture(self, transports: Transports) -> dict[str, Any]:
        """The container id and whether it was running."""
        container = transports.docker.container(self.target.ref)
        return {"id": container.id, "running": bool(container.attrs.get("State", {}).get("Running"))}

    def inject(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        """SIGKILL the container."""
        container = transports.docker.container(prior["id"])
        transports.docker.call("kill", container.kill, signal="SIGKILL")

    def revert(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        """If it is not running: restore the data file from the backup, then start it."""
        docker = transports.docker
        container = docker.container(prior["id"])
        if container.attrs.get("State", {}).get("Running") or not prior["running"]:
            return
        fetched: Any = docker.call("get_archive", container.get_archive, self.params["backup"])
        chunks: Iterable[bytes] = fetched[0]
        archive = _renamed(b"".join(chunks), posixpath.basename(self.params["path"]))
        ok = docker.call(
            "put_archive", container.put_archive, posixpath.dirname(self.params["path"]), archive
        )
        if not ok:
            raise RevertError(f"fault {self.fault_id!r}: could not restore {self.params['path']!r}")
        docker.call("start", container.start)

    def is_reverted(self, transports: Transports, prior: Mapping[str, Any]) -> bool:
        """The container runs again (when it ran before)."""
        running = bool(transports.docker.container(prior["id"]).attrs.get("State", {}).get("Running"))
        return running or not prior["running"]

    def manual_revert(self, prior: Mapping[str, Any]) -> str:
        """The docker CLI commands that do the same by container id."""
        cid, path, backup = prior["id"], self.params["path"], self.params["backup"]
        copy = f"docker cp {cid}:{backup} ./bcdrill-restore && docker cp ./bcdrill-restore {cid}:{path}"
        return f"{copy} && docker start {cid}"


def _renamed(archive: bytes, name: str) -> bytes:
    """The single-file tar ``archive`` with its member renamed to ``name``."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive)) as src, tarfile.open(fileobj=out, mode="w") as dst:
        member = next(m for m in src.getmembers() if m.isfile())
        data = src.extractfile(member)
        member.name = name
        dst.addfile(member, data)
    return out.getvalue()
