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

from engine.errors import InputError
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

# $1 sandbox, $2 directory, $3 manifest, $4 max files. Resolves both paths on the target and
# refuses (changing nothing) a directory outside the sandbox, a leftover manifest or more files
# than allowed; then reports what it found, writes the manifest and encrypts the listed files.
_ENCRYPT = f"""refuse() {{ echo "$1" >&2; exit {REFUSED_ON_TARGET}; }}
sandbox=$(realpath -e -- "$1") || refuse "the sandbox $1 is missing"
dir=$(realpath -e -- "$2") || refuse "the directory $2 is missing"
case "$dir/" in "$sandbox"/*) ;; *) refuse "outside the sandbox $sandbox: $dir" ;; esac
[ -d "$dir" ] || refuse "$dir is not a directory"
[ ! -e "$3" ] || refuse "restore manifest $3 exists"
count=$(find "$dir" -xdev -type f ! -name '*.locked' ! -name '.bcdrill-*' -printf . | wc -c)
[ "$count" -le "$4" ] || refuse "$count files exceed max_files=$4"
echo "{FACT_PREFIX}directory=$dir"
echo "{FACT_PREFIX}files=$count"
set -e
find "$dir" -xdev -type f ! -name '*.locked' ! -name '.bcdrill-*' -print0 > "$3.tmp"
mv -f "$3.tmp" "$3"
xargs -0 sh -c 'for f; do
    t="$f.bcdrill-tmp"
    base64 -- "$f" > "$t" && touch -r "$f" "$t" && mv -- "$f" "$f.locked" &&
    cat -- "$t" > "$f.locked" && touch -r "$t" "$f.locked" && rm -f -- "$t" || exit 1
done' sh < "$3"
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

    def local_state(self, host: SshHost) -> dict[str, Any]:
        """The declared sandbox, the directory and the manifest's path: no round trip. The inject
        script resolves them on the target and refuses a directory outside the sandbox."""
        return self.known_prior(host)

    def inject_commands(self, prior: Mapping[str, Any]) -> list[list[str]]:
        """One script: check the directory, write the manifest, encode and rename the files."""
        limit = str(int(self.params.get("max_files", 10000)))
        paths = [str(prior[key]) for key in ("sandbox", "directory", "manifest")]
        return [["sh", "-c", _ENCRYPT, "sh", *paths, limit]]

    def facts(self, raw: Mapping[str, str]) -> dict[str, Any]:
        """The resolved directory and the number of files encrypted."""
        found: dict[str, Any] = dict(raw)
        if str(raw.get("files", "")).isdecimal():
            found["files"] = int(raw["files"])
        return found

    def revert_script(self, prior: Mapping[str, Any]) -> str:
        """Restore every file in the manifest, then delete the manifest."""
        return f"set -- {shlex.quote(str(prior['manifest']))}\n{_RESTORE}"

    def reverted(self, ssh: SshTransport, prior: Mapping[str, Any]) -> bool:
        """The manifest is gone (it is deleted only after every file was restored)."""
        return ssh.run(["test", "-e", str(prior["manifest"])], check=False).exit_code != 0

    def known_prior(self, host: SshHost) -> dict[str, Any]:
        """The declared sandbox (the host resolves symlinks in it as the fault is injected)."""
        return self._paths(declared_path(host, str(self.params["sandbox"])))

    def example_prior(self) -> dict[str, Any]:
        """Placeholders for the declared sandbox."""
        return self._paths(f"<paths.{self.params['sandbox']}>")

    def _paths(self, sandbox: str) -> dict[str, Any]:
        return {
            "sandbox": sandbox,
            "directory": self._directory(sandbox),
            "manifest": f"{sandbox}/.bcdrill-restore-{slug(self.fault_id)}.manifest",
        }
