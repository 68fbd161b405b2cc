"""Run a command inside a container, paired with an explicit revert command."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any, ClassVar

from engine.errors import InjectionError, RevertError
from engine.faults.base import FaultAction, FaultPlan
from engine.model.types import Environment
from engine.transports.connections import Transports

_ARGV = {"type": "array", "minItems": 1, "items": {"type": "string"}}


class ExecInContainer(FaultAction):
    """``docker exec`` an inject argv; the revert argv undoes it (it must be idempotent)."""

    name = "docker.exec"
    target_kind = "container"
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["command", "revert"],
        "properties": {
            "command": {**_ARGV, "description": "argv run to inject the fault"},
            "revert": {**_ARGV, "description": "argv run to undo it; must be idempotent"},
            "check": {**_ARGV, "description": "argv that exits 0 once the fault is undone"},
            "timeout": {"type": "integer", "minimum": 1, "maximum": 600},
        },
    }

    def _timeout(self) -> float:
        return float(self.params.get("timeout", 30))

    def inject_lasts_s(self, environment: Environment) -> float:
        """The command runs on in the container until its timeout."""
        return self._timeout()

    def describe(self) -> FaultPlan:
        """The two commands, shell-quoted exactly as run."""
        label = self.target.label
        return FaultPlan(
            self.fault_id,
            self.name,
            self.target,
            inject=f"docker exec {label} {shlex.join(self.params['command'])}",
            revert=f"docker exec {label} {shlex.join(self.params['revert'])}",
        )

    def capture(self, transports: Transports) -> dict[str, Any]:
        """Only the container id: the revert command carries the rest."""
        return {"id": transports.docker.container(self.target.ref).id}

    def inject(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        """Run the inject command; a non-zero exit is an injection error."""
        result = transports.docker.exec(prior["id"], self.params["command"], self._timeout())
        if result.exit_code != 0:
            raise InjectionError(
                f"{shlex.join(self.params['command'])!r} exited {result.exit_code}: {result.output[-300:]}"
            )

    def revert(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        """Run the revert command; a non-zero exit is a revert error."""
        result = transports.docker.exec(prior["id"], self.params["revert"], self._timeout())
        if result.exit_code != 0:
            raise RevertError(
                f"{shlex.join(self.params['revert'])!r} exited {result.exit_code}: {result.output[-300:]}"
            )

    def is_reverted(self, transports: Transports, prior: Mapping[str, Any]) -> bool:
        """The ``check`` command exits 0 (assumed true when no check was given)."""
        check = self.params.get("check")
        if not check:
            return True
        return transports.docker.exec(prior["id"], check, self._timeout()).exit_code == 0

    def manual_revert(self, prior: Mapping[str, Any]) -> str:
        """The docker exec revert by container id."""
        return f"docker exec {prior['id']} {shlex.join(self.params['revert'])}"
