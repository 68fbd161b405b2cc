"""``host.disk_fill``: fill a declared directory's filesystem with one file; revert deletes it."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from engine.errors import InjectionError, InputError
from engine.faults.base import ResolvedTarget
from engine.faults.host_base import HostFault, declared_path, host_params_schema, slug

if TYPE_CHECKING:
    from engine.model.types import SshHost
    from engine.transports.ssh import SshTransport

MIB = 1024 * 1024


class DiskFill(HostFault):
    """``fallocate`` one file in the declared directory ``path`` (a name under ``paths``).

    Give ``free_percent`` (fill until at most that share of the filesystem is free for
    ordinary users) or ``size_mb``. Revert deletes exactly that file.
    """

    name: ClassVar[str] = "host.disk_fill"
    params_schema: ClassVar[dict[str, Any]] = host_params_schema(
        {
            "path": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]+$"},
            "free_percent": {"type": "number", "minimum": 0, "maximum": 99},
            "size_mb": {"type": "number", "exclusiveMinimum": 0},
        },
        required=("path",),
    )

    def __init__(
        self, fault_id: str, target: ResolvedTarget, params: Mapping[str, Any], run_id: str = ""
    ) -> None:
        super().__init__(fault_id, target, params, run_id)
        if ("free_percent" in params) == ("size_mb" in params):
            raise InputError(f"{self._what()}: give exactly one of 'free_percent' or 'size_mb'")

    def read_state(self, ssh: SshTransport, host: SshHost) -> dict[str, Any]:
        """Where the file goes, how big it must be, and the filesystem's free space now."""
        directory = declared_path(host, str(self.params["path"]))
        path = f"{directory}/.bcdrill-fill-{slug(self.fault_id)}"
        out = ssh.run(["stat", "-f", "-c", "%a %b %S", directory]).stdout.split()
        available, blocks, size = (int(v) for v in out)
        free_bytes, total_bytes = available * size, blocks * size
        exists = ssh.run(["test", "-e", path], check=False).exit_code == 0
        return {
            "file": path,
            "exists": exists,
            "free_bytes": free_bytes,
            "total_bytes": total_bytes,
            "fill_bytes": self._fill_bytes(free_bytes, total_bytes),
        }

    def _fill_bytes(self, free: int, total: int) -> int:
        if "size_mb" in self.params:
            return int(float(self.params["size_mb"]) * MIB)
        target_free = int(total * float(self.params["free_percent"]) / 100)
        return max(0, free - target_free)

    def check_before_inject(self, ssh: SshTransport, prior: Mapping[str, Any]) -> None:
        """Refuse when the file exists already or there is nothing to fill."""
        if prior["exists"]:
            raise InjectionError(f"{self._what()}: {prior['file']!r} exists already")
        if prior["fill_bytes"] <= 0:
            raise InjectionError(
                f"{self._what()}: the filesystem is already at or below the target free space"
            )

    def inject_commands(self, prior: Mapping[str, Any]) -> list[list[str]]:
        """One ``fallocate`` of the computed size."""
        return [["fallocate", "-l", str(prior["fill_bytes"]), str(prior["file"])]]

    def revert_script(self, prior: Mapping[str, Any]) -> str:
        """Delete exactly the fill file."""
        return f"rm -f -- {shlex.quote(str(prior['file']))}"

    def reverted(self, ssh: SshTransport, prior: Mapping[str, Any]) -> bool:
        """The fill file is gone."""
        return ssh.run(["test", "-e", str(prior["file"])], check=False).exit_code != 0

    def known_prior(self, host: SshHost) -> dict[str, Any]:
        """The file in the declared directory; the size only the host knows."""
        directory = declared_path(host, str(self.params["path"]))
        return {**self.example_prior(), "file": f"{directory}/.bcdrill-fill-{slug(self.fault_id)}"}

    def example_prior(self) -> dict[str, Any]:
        """Placeholders for the size and the file in the declared directory."""
        return {
            "file": f"<paths.{self.params['path']}>/.bcdrill-fill-{slug(self.fault_id)}",
            "fill_bytes": "<bytes to reach the target>",
        }
