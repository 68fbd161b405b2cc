"""What a run cannot do without, resolved by the shell (CLI, flow) and passed in.

The runner never looks a plugin up by name: the composition root resolves the debriefer,
the run services (the drill desk) and the responders from their registries, fails loudly
when a required one is missing, and hands them over as a :class:`RunParts`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.run.responses import ResponderContext, Responders

Debriefer = Callable[[Path], Mapping[str, Any]]
"""Turns a finished run folder into the debrief (DESIGN.md "Debrief JSON") and writes its files."""

ResponderFactory = Callable[[ResponderContext], Responders]
"""Gives an object with ``start()``/``stop()`` that serves or records steps during a run."""


@dataclass(frozen=True)
class RunParts:
    """The run's collaborators: a debriefer, services hosted for the run, simulated people."""

    debriefer: Debriefer
    services: tuple[ResponderFactory, ...] = ()
    responders: ResponderFactory | None = None
