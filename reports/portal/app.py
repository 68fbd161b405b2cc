"""``bcdrill serve``: a read-only web page of one client's drills and scorecards.

Each client opens ``/access/<token>`` once (the link ``bcdrill serve token CLIENT`` prints);
the server checks the token against the stored hashes, opens a server-side session (the
cookie holds a random session id, never the token: see :mod:`reports.portal.sessions`) in an
``HttpOnly``, ``SameSite=Strict`` cookie (``Secure`` behind TLS: :mod:`engine.web`) and
redirects to ``/``, the list of that client's drills with the value dashboard (score, outage
minutes, person-hours and cost over the years; the one-page PDF at ``/dashboard.pdf``).
``/runs/<run id>`` shows one debrief — always the client version — as HTML or
``?format=pdf``, in ``?lang=en|zh-CN``. Scripts may send ``Authorization: Bearer <token>``.

Every refusal looks the same: a missing, malformed, wrong or revoked token gets the same
401 page, and another client's run is the same 404 as a run that does not exist; an unknown
route or method gets the 401 page without a valid token and the 404 page with one. Tokens
never reach a log (the access log names the route template, not the path), responses carry
``Referrer-Policy: no-referrer`` so the access link does not leak, and every value on a page
is HTML-escaped by Jinja2.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import escape
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import DrillError
from engine.logsetup import get_logger
from engine.record.runstore import list_runs
from engine.record.tokens import token_hash
from engine.web import ProxySettings, security_headers
from reports.debrief.model import Debrief
from reports.debrief.trend import Trend, build_trend, same_client, trend_html, trend_pdf
from reports.debrief_writer import read_summary, verified_debrief
from reports.i18n import LANGUAGES, translator
from reports.portal.sessions import ServeSessions
from reports.portal.tokens import ServeTokens
from reports.renderers import RenderOptions, get_format, render_bytes

log = get_logger(__name__)

COOKIE = "bcdrill_client"
SECURITY_HEADERS = security_headers(data_images=True)
SERVE_FORMATS = ("html", "pdf")


class ServeApp:
    """The pages, over one run store and one token file."""

    def __init__(
        self, runs_root: Path | None, tokens: ServeTokens, lang: str, tz: str, proxy: ProxySettings
    ) -> None:
        translator(lang, tz)  # an unknown language or zone fails at start, not per request
        self.runs_root = runs_root
        self.tokens = tokens
        self.sessions = ServeSessions()
        self.lang = lang
        self.tz = tz
        self.proxy = proxy

    def client(self, request: Request) -> str | None:
        """The client asking: from ``Authorization: Bearer <token>`` (scripts) or the session
        cookie (browsers); None when neither names a current token."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return self.tokens.client_of(header[7:].strip())
        return self.tokens.client_of_hash(self.sessions.token_hash(request.cookies.get(COOKIE)))

    def refused(self, request: Request) -> Response:
        """The answer to an unknown route or method: the 401 page without a valid token, the
        404 page with one (the same pages as every other refusal)."""
        return self.not_found(request) if self.client(request) else self.denied(request)

    def language(self, request: Request) -> str:
        """``?lang=`` when it is a known language, else the server's default."""
        asked = request.query_params.get("lang", "")
        return asked if asked in LANGUAGES else self.lang

    def denied(self, request: Request) -> Response:
        """The one answer for every missing, malformed, wrong or revoked token."""
        t = translator(self.language(request), self.tz)
        page = f"<!DOCTYPE html><title>401</title><p>{_escape(t('serve.denied'))}</p>\n"
        return HTMLResponse(page, status_code=401)

    def not_found(self, request: Request) -> Response:
        """The one answer for a run that does not exist or is not this client's."""
        t = translator(self.language(request), self.tz)
        page = f"<!DOCTYPE html><title>404</title><p>{_escape(t('serve.not_found'))}</p>\n"
        return HTMLResponse(page, status_code=404)

    def trend(self, client: str) -> Trend:
        """The client's debriefed drills."""
        found = (read_summary(run_dir) for run_dir in list_runs(self.runs_root))
        return build_trend((s for s in found if s is not None), client)

    def run_debrief(self, client: str, run_id: str) -> Debrief | None:
        """The debrief of ``run_id`` if it exists and belongs to ``client``."""
        for run_dir in list_runs(self.runs_root):
            if run_dir.name != run_id:
                continue
            found = verified_debrief(run_dir)  # read once: the page shows what was verified
            if found is None or not same_client(found[1], client):
                return None
            return Debrief.from_json(found[0])
        return None


def _escape(text: str) -> str:
    return str(escape(text))


def create_app(
    runs_root: Path | None = None,
    tokens: ServeTokens | None = None,
    lang: str = "en",
    tz: str = "UTC",
    proxy: ProxySettings | None = None,
) -> FastAPI:
    """The read-only FastAPI app (no docs pages, no OpenAPI schema)."""
    pages = ServeApp(runs_root, tokens or ServeTokens(), lang, tz, proxy or ProxySettings())
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    async def on_http_error(request: Request, _exc: Exception) -> Response:
        return pages.refused(request)

    app.add_exception_handler(StarletteHTTPException, on_http_error)

    @app.middleware("http")
    async def headers_and_log(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        route = request.scope.get("route")
        # The route template ("/access/{token}"), never the path: a token must not be logged.
        log.info(
            "serve.request",
            method=request.method,
            route=getattr(route, "path", "unmatched"),
            status=response.status_code,
        )
        return response

    @app.get("/access/{token}")
    def access(token: str, request: Request) -> Response:
        if pages.tokens.client_of(token) is None:
            return pages.denied(request)
        session_id = pages.sessions.create(token_hash(token))
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE,
            session_id,
            httponly=True,
            samesite="strict",
            path="/",
            secure=pages.proxy.secure_cookies(request.url.scheme),
        )
        return response

    @app.get("/")
    def index(request: Request) -> Response:
        client = pages.client(request)
        if client is None:
            return pages.denied(request)
        lang = pages.language(request)
        trend = pages.trend(client)
        suffix = f"?lang={lang}" if lang != pages.lang else ""
        links = {p.run_id: f"/runs/{p.run_id}{suffix}" for p in trend.points}
        page = trend_html(trend, translator(lang, pages.tz), links, pdf_link=f"/dashboard.pdf{suffix}")
        return HTMLResponse(page)

    @app.get("/dashboard.pdf")
    def dashboard_pdf(request: Request) -> Response:
        client = pages.client(request)
        if client is None:
            return pages.denied(request)
        body = trend_pdf(pages.trend(client), translator(pages.language(request), pages.tz))
        return Response(body, media_type="application/pdf")

    @app.get("/runs/{run_id}")
    def run_page(run_id: str, request: Request) -> Response:
        client = pages.client(request)
        if client is None:
            return pages.denied(request)
        fmt = request.query_params.get("format", "html")
        debrief = pages.run_debrief(client, run_id) if fmt in SERVE_FORMATS else None
        if debrief is None:
            return pages.not_found(request)
        options = RenderOptions(pages.language(request), pages.tz, "client")
        try:
            body = render_bytes(debrief, fmt, options)
        except DrillError as exc:
            log.error("serve.render_failed", run=run_id, format=fmt, error=str(exc))
            return pages.not_found(request)
        return Response(body, media_type=get_format(fmt).media_type)

    return app


def serve(
    host: str, port: int, runs_root: Path | None, lang: str, tz: str, proxy: ProxySettings | None = None
) -> None:
    """Run the server until interrupted (uvicorn's access log is off: it would log paths)."""
    import uvicorn

    proxy = proxy or ProxySettings()
    app = create_app(runs_root, ServeTokens(), lang, tz, proxy)
    log.info("serve.started", host=host, port=port, behind_tls=proxy.behind_tls)
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning", **proxy.uvicorn_options())
