"""The drill desk web app (FastAPI): participant pages, the JSON ack API, service-desk webhooks.

Routes:

* ``GET /p/<token>`` — exchange a participant's token for a session cookie, 303 to ``/desk``;
* ``GET /desk`` — the participant's party's steps, one big "done" button each;
* ``POST /desk/ack`` — a "done" form (session cookie + CSRF field);
* ``POST /desk/decide`` — a decision form (option + one-line rationale);
* ``POST /desk/entry`` — a free-text entry for the evaluator to map;
* ``POST /desk/hotwash`` — the participant's hotwash survey after ENDEX;
* ``POST /desk/observe`` / ``POST /desk/rate`` — evaluators' observations and HSEEP ratings;
* ``POST /desk/map`` / ``POST /desk/correct`` — evaluators map a player's entry to a step (or
  none) and move a wrongly recorded step to another step;
* ``POST /api/ack`` — ``Authorization: Bearer <token>``, JSON ``{"step", "note"}``, optionally
  ``"choice"`` (a decision) and ``"claimed_at"`` (UTC epoch seconds the person acted; the
  engine uses it only inside the transit window, see :mod:`engine.run.stamps`);
* ``GET /api/messages`` — the injects sent to the bearer, in their language, and whether a
  hotwash survey waits for them (``"hotwash": "open"``);
* ``POST /api/hotwash`` — the bearer's hotwash answers, JSON ``{"went_well", "improve",
  "confidence", "internal"}``;
* ``POST /hooks/<name>`` — a signed service-desk delivery (see :mod:`drills.desk.webhooks`).

Every invalid request (unknown token, session or route, wrong party, bad CSRF, bad signature,
replay, stale timestamp, a body that does not parse) gets the same 404 body and headers, padded
to the same minimum time; so does a request that fails unexpectedly (logged once, by exception
type and route only). A bearer's token is checked before its body is read.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from drills.desk.evaluation import correct, is_evaluator, map_entry, observe, rate
from drills.desk.locale import words
from drills.desk.pages import desk_language, render_page
from drills.desk.participants import Holder
from drills.desk.recording import Arrival, DeskRecorder, Outcome
from drills.desk.tokens import RateLimiter, Session, Sessions, TokenBook, csrf_ok
from drills.desk.webhooks import WebhookVerifier
from engine.logsetup import get_logger
from engine.model.durations import format_duration
from engine.record.inbox import believable_claim
from engine.web import ProxySettings, json_object, security_headers

log = get_logger(__name__)

COOKIE = "bcdrill_desk"
MAX_BODY = 64 * 1024
MAX_FORM_FIELDS = 10  # the done form has three (csrf, step, note)
NOT_FOUND_FLOOR_S = 0.03  # every 404 takes at least this long, whatever failed
_EPOCH = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")  # a claimed "done at" in a form field
SECURITY_HEADERS = security_headers(form_action="'self'")
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Limits:
    """Rate limits: per client address and per presented token (burst, refill per second)."""

    address_burst: float = 60
    address_rate: float = 2.0
    token_burst: float = 20
    token_rate: float = 0.5


@dataclass
class Desk:
    """Everything the routes need: who may record what, sessions, webhook checks, limits."""

    recorder: DeskRecorder
    tokens: TokenBook
    verifier: WebhookVerifier
    limits: Limits = field(default_factory=Limits)
    sessions: Sessions = field(default_factory=Sessions)
    proxy: ProxySettings = field(default_factory=ProxySettings)

    def __post_init__(self) -> None:
        self.by_address = RateLimiter(self.limits.address_burst, self.limits.address_rate)
        self.by_token = RateLimiter(self.limits.token_burst, self.limits.token_rate)


def not_found() -> JSONResponse:
    """The one answer to every invalid request."""
    return JSONResponse({"detail": "Not Found"}, status_code=404)


def too_many() -> JSONResponse:
    """Rate limit exceeded."""
    return JSONResponse({"detail": "Too Many Requests"}, status_code=429, headers={"Retry-After": "5"})


class _Hardening:
    """Pure ASGI middleware: security headers on every response, 404s padded to a floor time,
    and the uniform 404 for a request that fails unexpectedly (never a bare 500)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered = False

        async def send_hardened(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
                if message["status"] == 404:
                    await asyncio.sleep(max(0.0, NOT_FOUND_FLOOR_S - (time.perf_counter() - started)))
            await send(message)

        try:
            await self.app(scope, receive, send_hardened)
        except Exception as exc:  # the one place no failure may answer differently
            _log_failure(scope, exc)
            if answered:
                raise  # half a response is out: nothing uniform can follow it
            await not_found()(scope, receive, send_hardened)


def _log_failure(scope: Scope, exc: Exception) -> None:
    """One line for a request that failed unexpectedly: the exception's type and the route's
    template (``/p/{token}``, never the path with a token in it); no message, no body."""
    route = getattr(scope.get("route"), "path", "unmatched")
    log.error("desk.request_failed", error=type(exc).__name__, method=scope.get("method", ""), route=route)


def create_app(desk: Desk) -> FastAPI:
    """The desk's ASGI app (no docs, no OpenAPI: nothing to discover)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    pages = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    pages.filters["duration"] = lambda s: "—" if s is None else format_duration(max(0.0, float(s)))

    async def on_http_error(_request: Request, exc: Exception) -> Response:
        return (
            not_found()
            if not isinstance(exc, StarletteHTTPException) or exc.status_code != 429
            else too_many()
        )

    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.middleware("http")(_limit_by_address(desk))
    _add_participant_routes(app, desk, pages)
    _add_api_routes(app, desk)
    app.add_middleware(_Hardening)
    return app


def _limit_by_address(
    desk: Desk,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    async def limit(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        address = request.client.host if request.client else "unknown"
        if not desk.by_address.allow(address):
            return too_many()
        return await call_next(request)

    return limit


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _session(desk: Desk, request: Request) -> Session | None:
    """The caller's session, if it exists and its token has not been revoked since."""
    cookie = request.cookies.get(COOKIE, "")
    session = desk.sessions.get(cookie) if cookie else None
    if session is None or desk.tokens.by_digest(session.token_digest) is None:
        return None
    return session


async def _body(request: Request) -> bytes | None:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------- participant pages


def _add_participant_routes(app: FastAPI, desk: Desk, pages: Environment) -> None:
    @app.get("/p/{token}")
    async def exchange(request: Request, token: str) -> Response:
        if not desk.by_token.allow(_token_key(token)):
            return too_many()
        holder = desk.tokens.lookup(token)
        if holder is None:
            return not_found()
        session_id, _created = desk.sessions.create(holder, _token_key(token))
        response = RedirectResponse("/desk", status_code=303)
        response.set_cookie(
            COOKIE,
            session_id,
            httponly=True,
            samesite="strict",
            secure=desk.proxy.secure_cookies(request.url.scheme),
            path="/",
        )
        return response

    @app.get("/desk")
    async def page(request: Request) -> Response:
        session = _session(desk, request)
        if session is None:
            return not_found()
        html = render_page(pages, desk.recorder, session)
        session.flash.clear()
        return HTMLResponse(html)

    @app.post("/desk/ack")
    async def done(request: Request) -> Response:
        received = time.time()
        session = _session(desk, request)
        body = await _body(request)
        if session is None or body is None:
            return not_found()
        form = _parse_form(body)
        if form is None or not csrf_ok(session, form.get("csrf", "")):
            return not_found()
        arrival = _arrival(form.get("claimed_at"), received)
        step, note = form.get("step", ""), form.get("note", "")
        outcome = await _ack(desk, session.holder, step, note, "desk", arrival)
        return _back_to_desk(desk, session, outcome)

    @app.post("/desk/decide")
    async def decide(request: Request) -> Response:
        session, form = await _form(desk, request)
        if session is None or form is None:
            return not_found()
        outcome = await asyncio.to_thread(
            desk.recorder.decide,
            session.holder,
            form.get("step", ""),
            form.get("choice", ""),
            form.get("note", ""),
            "desk",
        )
        return _back_to_desk(desk, session, outcome)

    @app.post("/desk/entry")
    async def entry(request: Request) -> Response:
        session, form = await _form(desk, request)
        if session is None or form is None:
            return not_found()
        outcome = await asyncio.to_thread(desk.recorder.log_entry, session.holder, form.get("text", ""))
        t = words(desk_language(desk.recorder, session.holder))
        recorded = outcome.status == "recorded"
        session.flash.append(
            t["entry_logged"] if recorded else t["not_recorded"].format(reason=outcome.reason)
        )
        return RedirectResponse("/desk", status_code=303)

    @app.post("/desk/hotwash")
    async def hotwash(request: Request) -> Response:
        session, form = await _form(desk, request)
        if session is None or form is None:
            return not_found()
        language = desk_language(desk.recorder, session.holder)
        outcome = await asyncio.to_thread(desk.recorder.answer_hotwash, session.holder, language, form)
        t = words(language)
        recorded = outcome.status == "recorded"
        session.flash.append(
            t["hw_recorded"] if recorded else t["not_recorded"].format(reason=outcome.reason)
        )
        return RedirectResponse("/desk", status_code=303)

    evaluator_forms = (
        ("/desk/observe", observe),
        ("/desk/rate", rate),
        ("/desk/map", map_entry),
        ("/desk/correct", correct),
    )
    for path, action in evaluator_forms:
        app.post(path)(_evaluator_route(desk, action))


def _evaluator_route(desk: Desk, action: Callable[..., Outcome]) -> Callable[[Request], Awaitable[Response]]:
    async def route(request: Request) -> Response:
        session, form = await _form(desk, request)
        if session is None or form is None or not is_evaluator(session.holder):
            return not_found()
        outcome = await asyncio.to_thread(action, desk.recorder, session.holder, form)
        if outcome.status == "forbidden":
            return not_found()
        t = words(desk_language(desk.recorder, session.holder))
        recorded = outcome.status == "recorded"
        session.flash.append(
            t["ev_recorded"].format(what=outcome.step)
            if recorded
            else t["not_recorded"].format(reason=outcome.reason)
        )
        return RedirectResponse("/desk", status_code=303)

    return route


async def _form(desk: Desk, request: Request) -> tuple[Session | None, dict[str, str] | None]:
    """The session and a CSRF-checked form, or Nones (answered like any invalid request)."""
    session = _session(desk, request)
    body = await _body(request)
    if session is None or body is None:
        return None, None
    form = _parse_form(body)
    if form is None or not csrf_ok(session, form.get("csrf", "")):
        return None, None
    return session, form


def _parse_form(body: bytes) -> dict[str, str] | None:
    """The fields of a url-encoded "done" form; None when it has more fields than any form of ours."""
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # parse_qs refuses past max_num_fields
        return None
    return {k: v[0] for k, v in fields.items()}


def _back_to_desk(desk: Desk, session: Session, outcome: Outcome) -> Response:
    """A form's answer: the outcome flashed on the desk page (an invalid request: the 404)."""
    if outcome.status == "forbidden":
        return not_found()
    session.flash.append(_flash(outcome, desk_language(desk.recorder, session.holder)))
    return RedirectResponse("/desk", status_code=303)


def _flash(outcome: Outcome, language: str = "en") -> str:
    t = words(language)
    if outcome.status == "recorded":
        return t["recorded"].format(step=outcome.step)
    if outcome.status == "duplicate":
        return t["duplicate"].format(step=outcome.step)
    return t["not_recorded"].format(reason=outcome.reason)


async def _ack(desk: Desk, holder: Holder, step: str, note: str, source: str, arrival: Arrival) -> Outcome:
    # Recording fsyncs the journal: keep it off the event loop.
    return await asyncio.to_thread(desk.recorder.ack, holder, step, note, source, arrival)


def _arrival(value: Any, received: float) -> Arrival:
    """An ack that arrived at ``received``, with the client's "done at" stamp when it sent a
    believable one: epoch seconds (a number or its text), finite and within a day of the
    receipt (:func:`engine.record.inbox.believable_claim`). Anything else is no claim (the
    receipt counts), as for a client that sends none."""
    if isinstance(value, str) and _EPOCH.fullmatch(value):
        value = float(value)
    claimed = believable_claim(value, received)
    return Arrival(received) if claimed is None else Arrival(received, claimed)


# ---------------------------------------------------------------- API and webhooks


def _add_api_routes(app: FastAPI, desk: Desk) -> None:
    @app.post("/api/ack")
    async def api_ack(request: Request) -> Response:
        received = time.time()
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return not_found()  # no token: not one shared budget that every such request spends
        if not desk.by_token.allow(_token_key(token)):
            return too_many()
        holder = desk.tokens.lookup(token)
        if holder is None:
            return not_found()  # the body of an unknown bearer is never read
        data = json_object(await _body(request))
        if data is None or not isinstance(data.get("step"), str):
            return not_found()
        note = str(data.get("note") or "")
        arrival = _arrival(data.get("claimed_at"), received)
        if isinstance(data.get("choice"), str):
            outcome = await asyncio.to_thread(
                desk.recorder.decide, holder, data["step"], data["choice"], note, "ack"
            )
        else:
            outcome = await _ack(desk, holder, data["step"], note, "ack", arrival)
        return _outcome_response(outcome)

    @app.get("/api/messages")
    async def api_messages(request: Request) -> Response:
        holder = _bearer(desk, request)
        if holder is None:
            return not_found()
        views = await asyncio.to_thread(desk.recorder.messages, holder, desk_language(desk.recorder, holder))
        return JSONResponse(
            {
                "messages": [{"inject": v.inject, "from": v.sender, "text": v.text} for v in views],
                "hotwash": desk.recorder.hotwash_state(holder),
            }
        )

    @app.post("/api/hotwash")
    async def api_hotwash(request: Request) -> Response:
        holder = _bearer(desk, request)
        if holder is None:
            return not_found()  # the body of an unknown bearer is never read
        data = json_object(await _body(request))
        if data is None:
            return not_found()
        language = desk_language(desk.recorder, holder)
        outcome = await asyncio.to_thread(desk.recorder.answer_hotwash, holder, language, data)
        return _outcome_response(outcome)

    @app.post("/hooks/{name}")
    async def hook(request: Request, name: str) -> Response:
        body = await _body(request)
        if body is None:
            return not_found()
        headers = {k.lower(): v for k, v in request.headers.items()}
        delivery = desk.verifier.verify(name, headers, body)
        if delivery is None:
            return not_found()
        outcome = await asyncio.to_thread(desk.recorder.webhook, delivery)
        return _outcome_response(outcome, accepted=202)


def _bearer(desk: Desk, request: Request) -> Holder | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if not token or scheme.lower() != "bearer" or not desk.by_token.allow(_token_key(token)):
        return None
    return desk.tokens.lookup(token)


def _outcome_response(outcome: Outcome, accepted: int = 200) -> Response:
    if outcome.status == "forbidden":
        return not_found()
    code = 409 if outcome.status == "rejected" else accepted
    return JSONResponse({"status": outcome.status, "step": outcome.step, "reason": outcome.reason}, code)
