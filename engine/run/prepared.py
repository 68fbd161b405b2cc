"""A playbook fault bound to one resolved target: what preflight prepares and the rest uses."""

from __future__ import annotations

from dataclasses import dataclass

from engine.faults.base import FaultAction
from engine.model.types import FaultSpec


@dataclass(frozen=True)
class PreparedFault:
    """A playbook fault bound to one resolved target, ready to inject."""

    spec: FaultSpec
    action: FaultAction
