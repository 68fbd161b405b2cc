"""The drill desk's pages: a player's (blind list or checklist) or an evaluator's, in the
participant's language (see :mod:`drills.desk.locale`)."""

from __future__ import annotations

from dataclasses import replace

from jinja2 import Environment

from drills.desk.evaluation import RATINGS, is_evaluator, timeline
from drills.desk.locale import language_of, words
from drills.desk.mail_address import drill_mail_address
from drills.desk.participants import Holder
from drills.desk.recording import DeskRecorder, StepView
from drills.desk.tokens import Session
from drills.desk.webhooks import correlation_code

__all__ = ["desk_language", "render_page"]


def desk_language(recorder: DeskRecorder, holder: Holder) -> str:
    """The language of ``holder``'s pages and messages."""
    return language_of(holder.name, recorder.context.participants)


def _own_mail_address(recorder: DeskRecorder, holder: Holder) -> str | None:
    """``holder``'s personal drill mail address while the drill is live and has a mailbox."""
    context = recorder.context
    if not recorder.drill_live() or holder.name not in {p.name for p in context.participants}:
        return None
    return drill_mail_address(context.run_dir, holder.name)


def _boards(recorder: DeskRecorder, show_internal: bool) -> dict[str, list[StepView]]:
    """Both parties' steps; MSP steps' notes only for holders of the MSP (as in the debriefs)."""
    boards = {party: recorder.board(party) for party in ("msp", "client")}
    if not show_internal:
        boards["msp"] = [replace(v, note="") for v in boards["msp"]]
    return boards


def _render_evaluator(pages: Environment, recorder: DeskRecorder, session: Session) -> str:
    context = recorder.context
    language = desk_language(recorder, session.holder)
    live = recorder.drill_live()
    show_internal = session.holder.party == "msp"  # the client's controllers see the client's debrief
    boards = _boards(recorder, show_internal) if live else {}
    titles = {s.key: context.exercise.title_in(s.key, s.title, language) for s in context.steps}
    mappable = {p: [s for s in context.steps if s.party == p and s.recorded_by.kind in ("ack", "webhook")]
                for p in ("msp", "client")}  # fmt: skip
    return pages.get_template("evaluator.html").render(
        holder=session.holder,
        client=context.client,
        live=live,
        elapsed=recorder.elapsed(),
        parties=boards,
        timeline=timeline(recorder, show_internal) if live else [],
        entries=recorder.entries() if live else [],
        recorded=[v for steps in boards.values() for v in steps if v.done and v.manual],
        mappable=mappable,
        titles=titles,
        steps=context.steps,
        ratings=RATINGS,
        csrf=session.csrf,
        flash=list(session.flash),
        correlation=correlation_code(context.run_id),
        lang=language,
        t=words(language),
        hotwash=recorder.hotwash_state(session.holder),
        show_internal=show_internal,
        mail_address=_own_mail_address(recorder, session.holder),
    )


def render_page(pages: Environment, recorder: DeskRecorder, session: Session) -> str:
    """The participant's desk page: the evaluator's view for controllers and evaluators."""
    context = recorder.context
    holder = session.holder
    if is_evaluator(holder):
        return _render_evaluator(pages, recorder, session)
    language = desk_language(recorder, holder)
    live = recorder.drill_live()
    checklist = context.exercise.players == "checklist"
    steps = recorder.board(holder.party) if checklist else recorder.actions(holder.party, language)
    return pages.get_template("desk.html").render(
        holder=holder,
        client=context.client,
        live=live,
        elapsed=recorder.elapsed(),
        checklist=checklist,
        steps=steps if live else [],
        messages=recorder.messages(holder, language) if live else [],
        decisions=recorder.decisions(holder.party, language) if live else [],
        csrf=session.csrf,
        flash=list(session.flash),
        correlation=correlation_code(context.run_id),
        lang=language,
        t=words(language),
        hotwash=recorder.hotwash_state(holder),
        show_internal=holder.party == "msp",
        mail_address=_own_mail_address(recorder, holder),
    )
