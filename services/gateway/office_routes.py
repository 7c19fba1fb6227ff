"""The pairing office's page: `/` with its own JS and CSS (static/), `/v1/office` and its live stream.

The page is one HTML document with a script and a style sheet served from here, under a Content-Security-Policy
of `self` only: no CDN, no inline script or style, no connection anywhere but this gateway. Its charts are SVG
drawn by static/office.js. Its language is English or Chinese: `?lang=` wins, else the browser's
Accept-Language; the page switches without a reload.

Public (no proof): the page itself, its files, and the open offers (`/v1/offers`, `/v1/offers/stream`), which
the page shows to anyone. Office data: recent fills (buyers' prices), commitments and their activations,
households by village and plans against actuals, in `/v1/office` and `/v1/office/stream`: they need the office
token (services/gateway/office.py), presented once to `POST /v1/office/session` (the page's sign-in form, or
`/#office=<token>`), which sets an HttpOnly, SameSite=Strict cookie; scripts may send `Authorization: Bearer`.
"""

from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from services.gateway.office import is_office
from services.gateway.streams import sse, stream

STATIC = Path(__file__).parent / "static"
FILES = {"office.js": "text/javascript; charset=utf-8", "office.css": "text/css; charset=utf-8"}
ICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2f9e44"/>'
    b'<path d="M4 11 L8 4 L12 11 Z" fill="#fff"/></svg>'
)
COOKIE = "farmlink_office"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
LANGS = ("en", "zh")
TITLES = {"en": "Yanhe production-market pairing office", "zh": "沿河产销对接办公室"}
OFFICE = {"401": {"description": "no office token (sign in at `POST /v1/office/session`, or `Authorization: Bearer`)"}}


def language(accept: str | None, asked: str | None = None) -> str:
    """`asked` when it is a language of the page, else the first of en/zh the Accept-Language header ranks highest."""
    if asked in LANGS:
        return asked
    best, best_q = "en", 0.0
    for position, part in enumerate((accept or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        lang = tag.strip().lower().split("-")[0]
        if lang in LANGS and q - position * 1e-6 > best_q:
            best, best_q = lang, q - position * 1e-6
    return best


def page_html(lang: str) -> str:
    """The page's document: a shell that static/office.js fills (no inline script or style)."""
    return f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{TITLES[lang]}</title>
<link rel="icon" href="/static/office/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/office/office.css">
<script src="/static/office/office.js" defer></script>
</head>
<body data-ready="0" data-errors="" data-lang="{lang}">
<header id="top"></header>
<main id="app"><p class="note">…</p></main>
<noscript>This page draws its tables and charts with JavaScript; /v1/offers and /v1/office give the same data as JSON.</noscript>
</body>
</html>
"""


class SignIn(BaseModel):
    token: str


def office(backend: Any, request: Request) -> bool:
    """Whether the request carries the office token (the cookie, or Authorization: Bearer)."""
    token = getattr(backend, "office_token", None)
    if not token:
        return False
    bearer = request.headers.get("authorization", "")
    presented = bearer[7:] if bearer.lower().startswith("bearer ") else request.cookies.get(COOKIE)
    return is_office(presented, token)


def require_office(backend: Any, request: Request) -> None:
    """401 unless the request carries the office token."""
    if not office(backend, request):
        raise HTTPException(
            401,
            "office data: sign in with the office token (POST /v1/office/session) or send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )


def add_page_routes(app: FastAPI) -> None:
    """The page and its files (public)."""

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page(request: Request, lang: str | None = Query(None)) -> HTMLResponse:
        return HTMLResponse(page_html(language(request.headers.get("accept-language"), lang)), headers=PAGE_HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(ICON, media_type="image/svg+xml", headers={**PAGE_HEADERS, "Cache-Control": "max-age=86400"})

    @app.get("/static/office/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name == "icon.svg":
            return await favicon()
        if name not in FILES:
            raise HTTPException(404, f"no file {name}")
        return FileResponse(STATIC / name, media_type=FILES[name], headers={**PAGE_HEADERS, "Cache-Control": "no-cache"})


def add_office_routes(app: FastAPI, backend: Any) -> None:
    """The page, its files, the office's session, data and stream."""
    add_page_routes(app)

    @app.get("/v1/office/session")
    async def session(request: Request) -> dict:
        """Whether this browser is signed in as the office (200 either way: the page asks before it reads)."""
        return {"office": office(backend, request)}

    @app.post("/v1/office/session", responses={"401": {"description": "not the office token"}})
    async def sign_in(body: SignIn) -> JSONResponse:
        """Sign in with the office token: sets an HttpOnly, SameSite=Strict cookie for the page and its stream."""
        token = getattr(backend, "office_token", None)
        if not token or not is_office(body.token, token):
            raise HTTPException(401, "not the office token")
        response = JSONResponse({"office": True})
        response.set_cookie(COOKIE, body.token, httponly=True, samesite="strict", path="/")
        return response

    @app.delete("/v1/office/session")
    async def sign_out() -> Response:
        response = JSONResponse({"office": False})
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/v1/office", responses=OFFICE)
    async def office_view(request: Request) -> dict:
        """The office's figures: offers, recent fills, commitments with their activations and fen paid above the market,
        registered-poor households with and without income by village, plans against actuals; `last_seq` for the stream."""
        require_office(backend, request)
        return await backend.office_view()

    @app.get("/v1/office/stream", response_class=StreamingResponse, responses=OFFICE)
    async def office_stream(
        request: Request, after: int = Query(0, ge=0, description="fills after this seq (Last-Event-ID wins)")
    ) -> StreamingResponse:
        """Server-Sent Events: every buyer's `fill` (id = seq), `offer` events, and `office` when the figures may have moved."""
        require_office(backend, request)
        last = request.headers.get("Last-Event-ID")
        cursor = int(last) if last and last.isdigit() else after
        return sse(stream(request, backend, backend.all_fills, cursor, office=True))
