"""What responders and run services see of a run: one wiring of a :class:`ResponderContext`.

The runner builds its context here, and so do tests that drive the desk or the mailbox
around a bare :class:`StepBook` — so a test's desk is wired exactly as a drill's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

from engine.clock import Clock
from engine.model.types import Participant, Playbook, RunbookAction
from engine.run.hotwash import HotwashBook
from engine.run.mapping import correct_step, map_entry
from engine.run.responses import ResponderContext, StepBook

__all__ = ["responder_context"]


def responder_context(
    playbook: Playbook,
    book: StepBook,
    hotwash: HotwashBook,
    *,
    run_dir: Path,
    client: str,
    environment: str,
    participants: tuple[Participant, ...],
    seed: int,
    clock: Clock,
    options: Mapping[str, str],
    perform_runbook: Callable[[RunbookAction], str] | None = None,
) -> ResponderContext:
    """The context of the run in ``run_dir`` whose steps ``book`` keeps."""
    return ResponderContext(
        run_id=run_dir.name,
        run_dir=run_dir,
        client=client,
        environment=environment,
        steps=playbook.steps,
        participants=participants,
        seed=seed,
        clock=clock,
        anchor=lambda: book.anchor,
        recorded_at=book.recorded_at,
        record=book.record,
        options=options,
        perform_runbook=perform_runbook,
        exercise=playbook.exercise,
        closed_reason=book.closed_reason,
        log_entry=book.log_entry,
        updating=book.updating,
        evaluate=book.evaluate,
        map_entry=partial(map_entry, book),
        correct_step=partial(correct_step, book),
        hotwash_state=hotwash.state,
        answer_hotwash=hotwash.answer,
    )
