"""The probe contract: a registered class that answers "is this healthy right now?"."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from engine.model.types import frozen_mapping, thaw

if TYPE_CHECKING:
    from engine.model.types import Environment, ProbeSpec
    from engine.transports.connections import Transports


@dataclass(frozen=True)
class ProbeResult:
    """One observation: healthy or not, a short reason (never a secret), and optionally a
    measurement — a JSON-able mapping of figures the probe derived (e.g. a ``data`` probe's
    recovery point). The watcher journals a measurement as ``probe.measured`` whenever it
    differs from the last one it journaled, so a probe may carry its latest measurement on
    every result. Raises :class:`TypeError` when the measurement cannot be written as strict
    JSON (a probe bug, caught by the watcher like any other).

    ``opened_after_s`` is how long after the start of the check its connection opened (None
    when the probe has no connection phase): a recovery is stamped at that moment, the first
    at which the service was observably back, not when the answer finished arriving.
    """

    healthy: bool
    detail: str = ""
    measurement: Mapping[str, Any] | None = field(default=None, hash=False)
    opened_after_s: float | None = None

    def __post_init__(self) -> None:
        if self.measurement is None:
            return
        try:
            json.dumps(thaw(self.measurement), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"probe measurement {self.measurement!r} is not JSON-able: {exc}") from exc
        object.__setattr__(self, "measurement", frozen_mapping(self.measurement))

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

    def on_target_change(self, wake: Callable[[], None]) -> None:  # noqa: B027 - optional, like close
        """The watcher's ``wake``: a probe that learns between checks that its target changed
        (a container started or stopped) may call it, from any thread, and the watcher looks
        at once.
        Default: the probe never calls it."""

    def close(self) -> None:  # noqa: B027 - an optional hook, a no-op unless a probe holds something
        """Release what the probe holds between checks (default: nothing)."""

    def describe(self) -> str:
        """What is being watched, for ``bcdrill plan``."""
        return f"{self.name} probe {self.spec.id}"
