"""``host.disk_fill``: fill a declared directory's filesystem with one file; revert deletes it."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from engine.errors import InputError
from engine.faults.base import ResolvedTarget
from engine.faults.host_base import (
    FACT_PREFIX,
    REFUSED_ON_TARGET,
    HostFault,
    declared_path,
    host_params_schema,
    slug,
)

if TYPE_CHECKING:
    from engine.model.types import SshHost
    from engine.transports.ssh import SshTransport

MIB = 1024 * 1024
PPM = 1_000_000  # free_percent travels as parts per million: the target's shell counts in integers
# $1 directory, $2 fill file, $3 "bytes" or "ppm", $4 that number. Reads the filesystem's free
# space, refuses (changing nothing) when the file exists or there is nothing to fill, else
# allocates the file and reports what it read. Counts in blocks first, so the product of a
# large filesystem's size and the ppm stays inside the shell's 64-bit integers.
_FILL = f"""if [ -e "$2" ]; then echo "$2 exists already" >&2; exit {REFUSED_ON_TARGET}; fi
set -- "$1" "$2" "$3" "$4" $(stat -f -c '%a %b %S' "$1")
[ "$#" -eq 7 ] || {{ echo "cannot read the free space of $1" >&2; exit 1; }}
free=$(($5 * $7)) total=$(($6 * $7))
if [ "$3" = bytes ]; then fill=$4; else fill=$(( ($5 - $6 * $4 / {PPM}) * $7 )); fi
if [ "$fill" -le 0 ]; then
    echo "the filesystem of $1 is already at or below the target free space" >&2; exit {REFUSED_ON_TARGET}
fi
echo "{FACT_PREFIX}free_bytes=$free"
echo "{FACT_PREFIX}total_bytes=$total"
echo "{FACT_PREFIX}fill_bytes=$fill"
fallocate -l "$fill" "$2"
"""


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

    def local_state(self, host: SshHost) -> dict[str, Any]:
        """Where the fill file goes (the declared directory): no round trip. The free space is
        read by the inject command itself, on the target, as it fills."""
        directory = declared_path(host, str(self.params["path"]))
        return {"directory": directory, "file": self._file(directory)}

    def _amount(self) -> list[str]:
        if "size_mb" in self.params:
            return ["bytes", str(int(float(self.params["size_mb"]) * MIB))]
        return ["ppm", str(round(float(self.params["free_percent"]) * PPM / 100))]

    def inject_commands(self, prior: Mapping[str, Any]) -> list[list[str]]:
        """One script: read the free space, refuse or ``fallocate`` the computed size."""
        return [["sh", "-c", _FILL, "sh", str(prior["directory"]), str(prior["file"]), *self._amount()]]

    def facts(self, raw: Mapping[str, str]) -> dict[str, Any]:
        """The free, total and filled bytes, as numbers."""
        return {key: int(value) for key, value in raw.items() if value.isdecimal()}

    def revert_script(self, prior: Mapping[str, Any]) -> str:
        """Delete exactly the fill file."""
        return f"rm -f -- {shlex.quote(str(prior['file']))}"

    def reverted(self, ssh: SshTransport, prior: Mapping[str, Any]) -> bool:
        """The fill file is gone."""
        return ssh.run(["test", "-e", str(prior["file"])], check=False).exit_code != 0

    def known_prior(self, host: SshHost) -> dict[str, Any]:
        """The file in the declared directory: exactly what a run will use."""
        return self.local_state(host)

    def example_prior(self) -> dict[str, Any]:
        """Placeholders for the declared directory."""
        directory = f"<paths.{self.params['path']}>"
        return {"directory": directory, "file": self._file(directory)}

    def _file(self, directory: str) -> str:
        return f"{directory}/.bcdrill-fill-{slug(self.fault_id)}"
