"""Which members of a multi-member target a fault hits (``select: {count|percent}``)."""

from __future__ import annotations

import math
import random

from engine.model.types import FaultSpec


def select_members(spec: FaultSpec, members: tuple[str, ...], seed: int | None) -> tuple[str, ...]:
    """The members a fault hits: all, or ``select`` count/percent of them drawn with the run's seed.

    Without a seed (a dry run) every candidate is returned. The order of ``members`` is kept.
    """
    if seed is None or (spec.select_count is None and spec.select_percent is None):
        return members
    if spec.select_count is not None:
        wanted = min(spec.select_count, len(members))
    else:
        wanted = max(1, math.ceil(len(members) * (spec.select_percent or 0) / 100))
    chosen = set(random.Random(f"{seed}:{spec.id}").sample(sorted(members), wanted))  # noqa: S311 - reproducible, not secret
    return tuple(m for m in members if m in chosen)
