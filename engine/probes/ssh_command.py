"""``ssh.command`` probe: a read-only command on the target host; exit 0 means up."""

from __future__ import annotations

from typing import Any, ClassVar

from engine.errors import DrillError
from engine.probes.base import ProbeKind, ProbeResult


class SshCommandProbe(ProbeKind):
    """Run ``argv`` on the probe's target host (or ``host``) within the probe timeout.

    The host is ``params.host`` when given, else the first SSH host bound to the probe's
    target in the environment. The command must not change anything: probes run every
    interval for the whole drill.
    """

    name: ClassVar[str] = "ssh.command"
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "argv": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "host": {"type": "string", "minLength": 1},
        },
        "required": ["argv"],
    }

    def host_name(self) -> str:
        """The SSH host this probe runs on."""
        host = self.spec.params.get("host")
        if host:
            return str(host)
        binding = self.environment.targets.get(self.spec.target or "")
        if binding is None or binding.kind != "host" or not binding.refs:
            raise DrillError(
                f"probe {self.spec.id!r}: target {self.spec.target!r} is not bound to an SSH "
                "host; give params.host"
            )
        return binding.refs[0]

    def check(self) -> ProbeResult:
        """Run the command once; a non-zero exit, timeout or connection error is ``down``."""
        argv = [str(a) for a in self.spec.params["argv"]]
        try:
            ssh = self.transports.ssh(self.host_name())
            result = ssh.run(argv, timeout=self.spec.timeout_s, check=False)
        except DrillError as exc:
            return ProbeResult(False, f"{type(exc).__name__}: {exc}"[:300])
        if result.exit_code == 0:
            return ProbeResult(True, "exit 0")
        tail = (result.stderr or result.stdout).strip()[-200:]
        return ProbeResult(False, f"exit {result.exit_code}: {tail}")

    def describe(self) -> str:
        """The command and host being watched."""
        return f"ssh.command probe {self.spec.id}: {' '.join(self.spec.params['argv'])}"
