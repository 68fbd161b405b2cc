"""The fault contract: one object pairs a fault's inject with its revert.

A fault action is a registered class. An instance is bound to one resolved target and its
validated parameters. ``describe()`` has no side effects (it is what ``bcdrill plan`` shows);
``capture()`` reads the prior state (read-only); ``inject()`` applies the fault;
``revert()`` restores the captured prior state and is idempotent; ``is_reverted()`` verifies.
Everything ``revert()`` needs is in the JSON-able prior state plus the target and params,
which the journal records in ``fault.intent`` *before* ``inject()`` runs — so
``bcdrill recover`` can rebuild the object from the journal alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from engine.model.types import Environment
    from engine.transports.connections import Transports

TargetKind = Literal["container", "host"]


@dataclass(frozen=True)
class ResolvedTarget:
    """A logical target resolved in an environment: one container (by id) or one SSH host."""

    name: str  # the playbook's logical name, e.g. "storefront"
    kind: TargetKind
    ref: str  # container id, or SSH host name in the environment
    label: str  # what a person recognises: container name, or user@address

    def to_json(self) -> dict[str, str]:
        """Plain dict for the journal."""
        return asdict(self)


@dataclass(frozen=True)
class FaultPlan:
    """What a fault will do, shown by ``bcdrill plan``: the exact call and its revert."""

    fault_id: str
    action: str
    target: ResolvedTarget
    inject: str
    revert: str


@dataclass(frozen=True)
class EffectiveTime:
    """The moment a fault took effect (unix seconds) and where that moment comes from."""

    unix: float
    source: str  # e.g. "docker daemon event 'die'"


class FaultAction(ABC):
    """Base class of every fault action; subclasses set the class variables and four methods."""

    name: ClassVar[str]
    target_kind: ClassVar[TargetKind]
    params_schema: ClassVar[dict[str, Any]] = {"type": "object", "additionalProperties": False}
    #: True when a responder can undo this fault with the ordinary tools of the job (start a
    #: stopped container): then, by default, the responders restore the service and the
    #: engine only verifies (``restore: responders``); otherwise the engine restores it at the
    #: responder's signal (``restore: engine``). See docs/scoring.md.
    responder_restorable: ClassVar[bool] = False

    def __init__(
        self, fault_id: str, target: ResolvedTarget, params: Mapping[str, Any], run_id: str = ""
    ) -> None:
        self.fault_id = fault_id
        self.target = target
        self.params = params
        self.run_id = run_id  # names what the fault leaves on a target (pidfiles) per run

    @abstractmethod
    def describe(self) -> FaultPlan:
        """The exact inject and revert, without side effects."""

    @abstractmethod
    def capture(self, transports: Transports) -> dict[str, Any]:
        """Read (never change) the prior state that ``revert`` must restore."""

    @abstractmethod
    def inject(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        """Apply the fault. Must honour the transport deadlines."""

    @abstractmethod
    def revert(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        """Restore ``prior``. Idempotent: reverting a reverted fault changes nothing."""

    @abstractmethod
    def is_reverted(self, transports: Transports, prior: Mapping[str, Any]) -> bool:
        """True when the target is back in its prior state (as far as this fault goes)."""

    def effective_at(
        self, transports: Transports, prior: Mapping[str, Any], since: float, until: float
    ) -> EffectiveTime | None:
        """When the fault really took effect, from the target's own source of truth, for an
        inject called at unix time ``since`` that returned at ``until``; None when the target
        has no such source (then the impact starts at the ``fault.applied`` record)."""
        return None

    def applied_facts(self) -> dict[str, Any]:
        """What ``inject`` read on the target as it acted (e.g. the pids it signalled), for the
        ``fault.applied`` record; a revert never relies on it (it has the prior state)."""
        return {}

    def manual_revert(self, prior: Mapping[str, Any]) -> str:
        """The command a person runs when the automatic revert failed."""
        return self.describe().revert

    def inject_lasts_s(self, environment: Environment) -> float:
        """How long an inject, once started, can go on by itself when the engine dies during it
        (on the target or in the Docker daemon): ``recover`` reverts only after that. Default:
        one quick request to the daemon."""
        return 0.0
