"""bcdrill engine: playbooks, environments, faults, probes, the run journal and the drill flow.

The engine never imports :mod:`drills` or :mod:`reports`; those packages plug into it
through entry points (see :mod:`engine.registry`).
"""

__version__ = "0.1.0"
