"""``host.encrypt_files``: a ransomware drill inside a declared sandbox directory only.

Every regular file under the sandbox (or a sub-directory of it) is base64-encoded in place
and renamed ``<name>.locked``; the list of files goes to a NUL-separated restore manifest
first. Revert decodes and renames back exactly the files in the manifest, keeping inode,
mode, owner and modification time. Paths that resolve outside the sandbox are refused.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from engine.errors import InjectionError, InputError
from engine.faults.host_base import HostFault, declared_path, host_params_schema, slug

if TYPE_CHECKING:
    from engine.model.types import SshHost
    from engine.transports.ssh import SshTransport

# $1 sandbox, $2 directory: print both resolved; fail unless the directory is inside.
_RESOLVE = """sandbox=$(realpath -e -- "$1") || exit 3
dir=$(realpath -e -- "$2") || exit 3
case "$dir/" in "$sandbox"/*) ;; *) echo "outside the sandbox: $dir" >&2; exit 3 ;; esac
[ -d "$dir" ] || exit 3
printf '%s\\n%s\\n' "$sandbox" "$dir"
find "$dir" -xdev -type f ! -name '*.locked' ! -name '.bcdrill-*' -printf . | wc -c
"""
# $1 directory, $2 manifest.
_ENCRYPT = """set -e
find "$1" -xdev -type f ! -name '*.locked' ! -name '.bcdrill-*' -print0 > "$2.tmp"
mv -f "$2.tmp" "$2"
xargs -0 sh -c 'for f; do
    t="$f.bcdrill-tmp"
    base64 -- "$f" > "$t" && touch -r "$f" "$t" && mv -- "$f" "$f.locked" &&
    cat -- "$t" > "$f.locked" && touch -r "$t" "$f.locked" && rm -f -- "$t" || exit 1
done' sh < "$2"
"""
# $1 manifest: decode and rename back each listed file; then drop the manifest.
_RESTORE = """[ -f "$1" ] || exit 0
xargs -0 sh -c 'for f; do
    [ -f "$f.locked" ] && [ ! -e "$f" ] || continue
    t="$f.bcdrill-tmp"
    base64 -d -- "$f.locked" > "$t" && touch -r "$f.locked" "$t" &&
    cat -- "$t" > "$f.locked" && touch -r "$t" "$f.locked" && rm -f -- "$t" &&
    mv -- "$f.locked" "$f" || exit 1
done' sh < "$1" && rm -f -- "$1"
"""


class EncryptFiles(HostFault):
    """Encrypt-and-rename the files of the declared sandbox ``sandbox`` (a name under ``paths``).

    ``subdir`` narrows it to a relative sub-directory; ``max_files`` (default 10000) refuses
    a sandbox larger than expected.
    """

    name: ClassVar[str] = "host.encrypt_files"
    params_schema: ClassVar[dict[str, Any]] = host_params_schema(
        {
            "sandbox": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]+$"},
            "subdir": {"type": "string", "minLength": 1},
            "max_files": {"type": "integer", "minimum": 1},
        },
        required=("sandbox",),
    )

    def _directory(self, sandbox: str) -> str:
        subdir = self.params.get("subdir")
        if subdir is None:
            return sandbox
        normal = posixpath.normpath(subdir)
        if subdir.startswith("/") or normal == ".." or normal.startswith("../"):
            raise InputError(f"{self._what()}: subdir {subdir!r} leaves the sandbox {sandbox!r}")
        return posixpath.join(sandbox, normal)

    def read_state(self, ssh: SshTransport, host: SshHost) -> dict[str, Any]:
        """The resolved sandbox and directory, the manifest path and the number of files."""
        sandbox = declared_path(host, str(self.params["sandbox"]))
        result = ssh.run(["sh", "-c", _RESOLVE, "sh", sandbox, self._directory(sandbox)], check=False)
        lines = result.stdout.splitlines()
        if result.exit_code != 0 or len(lines) != 3:
            raise InputError(
                f"{self._what()}: directory is missing or outside the sandbox {sandbox!r}: "
                f"{result.stderr.strip()!r}"
            )
        real_sandbox, directory, count = lines
        manifest = f"{real_sandbox}/.bcdrill-restore-{slug(self.fault_id)}.manifest"
        exists = ssh.run(["test", "-e", manifest], check=False).exit_code == 0
        return {
            "sandbox": real_sandbox,
            "directory": directory,
            "files": int(count),
            "manifest": manifest,
            "manifest_exists": exists,
        }

    def check_before_inject(self, ssh: SshTransport, prior: Mapping[str, Any]) -> None:
        """Refuse a leftover manifest or more files than ``max_files``."""
        if prior["manifest_exists"]:
            raise InjectionError(f"{self._what()}: restore manifest {prior['manifest']!r} exists")
        limit = int(self.params.get("max_files", 10000))
        if prior["files"] > limit:
            raise InjectionError(f"{self._what()}: {prior['files']} files exceed max_files={limit}")

    def inject_commands(self, prior: Mapping[str, Any]) -> list[list[str]]:
        """Write the manifest, then encode and rename every listed file."""
        return [["sh", "-c", _ENCRYPT, "sh", str(prior["directory"]), str(prior["manifest"])]]

    def revert_script(self, prior: Mapping[str, Any]) -> str:
        """Restore every file in the manifest, then delete the manifest."""
        return f"set -- {shlex.quote(str(prior['manifest']))}\n{_RESTORE}"

    def reverted(self, ssh: SshTransport, prior: Mapping[str, Any]) -> bool:
        """The manifest is gone (it is deleted only after every file was restored)."""
        return ssh.run(["test", "-e", str(prior["manifest"])], check=False).exit_code != 0

    def known_prior(self, host: SshHost) -> dict[str, Any]:
        """The declared sandbox (the host may still resolve symlinks in it)."""
        sandbox = declared_path(host, str(self.params["sandbox"]))
        return {
            "directory": self._directory(sandbox),
            "manifest": f"{sandbox}/.bcdrill-restore-{slug(self.fault_id)}.manifest",
        }

    def example_prior(self) -> dict[str, Any]:
        """Placeholders for the declared sandbox."""
        sandbox = f"<paths.{self.params['sandbox']}>"
        return {
            "directory": self._directory(sandbox),
            "manifest": f"{sandbox}/.bcdrill-restore-{slug(self.fault_id)}.manifest",
        }
