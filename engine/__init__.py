"""bcdrill engine: playbooks, environments, faults, probes, the run journal and the drill flow.

The engine never imports :mod:`drills` or :mod:`reports`; those packages plug into it
through entry points (see :mod:`engine.registry`).
"""

import importlib
import os
from collections.abc import Callable, Mapping
from typing import Any

__version__ = "0.1.0"


def face(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for a sub-package's public face: ``names`` maps each public name
    to the module that defines it, imported on first use (a face costs no import time)."""

    def getattr_(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return getattr_


# Never let an embedded Prefect server phone home: traffic stays on this machine.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
