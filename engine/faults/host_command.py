"""``host.command``: a custom inject/revert pair, each an argv list (no shell)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from engine.faults.host_base import HostFault, host_params_schema

if TYPE_CHECKING:
    from engine.transports.ssh import SshTransport

_ARGV = {"type": "array", "items": {"type": "string"}, "minItems": 1}


class Command(HostFault):
    """Run ``inject`` (argv); revert runs ``revert`` (argv, must be idempotent).

    ``verify`` (argv, optional) exits 0 when the host is back to normal; without it
    ``is_reverted`` can only trust the revert command's exit code.
    """

    name: ClassVar[str] = "host.command"
    # A custom command (``dropdb``, ``rm -rf``…) hits the service as it begins, not as it returns.
    effect_at_start: ClassVar[bool] = True
    params_schema: ClassVar[dict[str, Any]] = host_params_schema(
        {"inject": _ARGV, "revert": _ARGV, "verify": _ARGV}, required=("inject", "revert")
    )

    def inject_commands(self, prior: Mapping[str, Any]) -> list[list[str]]:
        """The ``inject`` argv."""
        return [[str(a) for a in self.params["inject"]]]

    def revert_script(self, prior: Mapping[str, Any]) -> str:
        """The ``revert`` argv, quoted."""
        return shlex.join(str(a) for a in self.params["revert"])

    def reverted(self, ssh: SshTransport, prior: Mapping[str, Any]) -> bool:
        """``verify`` exits 0 (true when no ``verify`` is given)."""
        verify = self.params.get("verify")
        if not verify:
            return True
        return ssh.run([str(a) for a in verify], check=False).exit_code == 0

    def example_prior(self) -> dict[str, Any]:
        """Nothing to stand in for."""
        return {}
