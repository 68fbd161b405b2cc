"""The probe contract: a registered class that answers "is this healthy right now?"."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from engine.models import Environment, ProbeSpec
    from engine.transports import Transports


@dataclass(frozen=True)
class ProbeResult:
    """One observation: healthy or not, and a short reason (never a secret)."""

    healthy: bool
    detail: str = ""

    @property
    def state(self) -> str:
        """``up`` or ``down``: the words journals and reports use."""
        return "up" if self.healthy else "down"


class ProbeKind(ABC):
    """Base class of every probe kind. ``check()`` must return within ``spec.timeout_s``."""

    name: ClassVar[str]
    params_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    def __init__(self, spec: ProbeSpec, environment: Environment, transports: Transports) -> None:
        self.spec = spec
        self.environment = environment
        self.transports = transports

    @abstractmethod
    def check(self) -> ProbeResult:
        """Observe once. Never raises for an unhealthy target: that is a ``down`` result."""

    def describe(self) -> str:
        """What is being watched, for ``bcdrill plan``."""
        return f"{self.name} probe {self.spec.id}"
