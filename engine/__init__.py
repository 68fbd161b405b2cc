"""bcdrill engine: playbooks, environments, faults, probes, the run journal and the drill flow.

The engine never imports :mod:`drills` or :mod:`reports`; those packages plug into it
through entry points (see :mod:`engine.registry`).
"""

import os

__version__ = "0.1.0"

# Never let an embedded Prefect server phone home: traffic stays on this machine.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
