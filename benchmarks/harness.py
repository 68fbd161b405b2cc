"""A real :class:`~engine.run.runner.DrillRun` used piecewise: its inject path, one fault at a time.

The benchmarks call ``DrillRun._inject`` (capture → ``fault.intent`` fsync'd → the inject hook
→ ``fault.applied``) exactly as the timeline does, and time each journal record as it lands.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.faults.base import ResolvedTarget
from engine.model.types import Environment, FaultSpec, Playbook, frozen_mapping
from engine.plugins import FAULTS, resolve_parts
from engine.record.records import RecordType
from engine.run.prepared import PreparedFault
from engine.run.runner import DrillRun, RunOptions


@dataclasses.dataclass(frozen=True)
class InjectTimes:
    """Monotonic times of one engine injection."""

    issued: float
    intent: float  # fault.intent durable (prior state captured)
    applied: float  # fault.applied durable (inject returned)


class InjectHarness:
    """One DrillRun whose inject path is driven fault by fault."""

    def __init__(self, playbook: Playbook, environment: Environment) -> None:
        self.run_dir = Path(tempfile.mkdtemp(prefix="bcdrill-bench-run-"))
        self._marks: dict[str, float] = {}
        self.drill = DrillRun(
            playbook,
            environment,
            self.run_dir,
            RunOptions(responders="auto"),
            resolve_parts("auto", False),
            listeners=(self._listen,),
        )

    def _listen(self, record: Mapping[str, Any]) -> None:
        self._marks[str(record["type"])] = time.monotonic()

    def prepared(
        self, action: str, target: ResolvedTarget, params: Mapping[str, Any], fault_id: str
    ) -> PreparedFault:
        """A PreparedFault exactly as preflight builds it."""
        spec = FaultSpec(fault_id, action, target.name, 0.0, None, None, frozen_mapping(params))
        return PreparedFault(spec, FAULTS.get(action)(fault_id, target, spec.params))

    def inject(self, pf: PreparedFault) -> tuple[InjectTimes, Mapping[str, Any]]:
        """Run DrillRun's inject path; return its times and the captured prior state."""
        self._marks.clear()
        issued = time.monotonic()
        self.drill._inject([pf])
        active = self.drill._state.active.pop()
        return InjectTimes(
            issued, self._marks[RecordType.FAULT_INTENT], self._marks[RecordType.FAULT_APPLIED]
        ), active.prior

    def revert(self, pf: PreparedFault, prior: Mapping[str, Any]) -> None:
        """The fault's own revert (disarms host dead-man timers)."""
        pf.action.revert(self.drill.transports, prior)

    def close(self) -> None:
        """Close connections and the journal."""
        self.drill.transports.close()
        self.drill.journal.close()
