"""The customer web page: one HTML document, its script and style, served by the API app."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

_FILES = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
# The page runs only its own script and talks only to its own origin.
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'")


def _read(name: str) -> str:
    return resources.files("portal_api").joinpath("web", name).read_text("utf-8")


def mount(app: FastAPI) -> None:
    html = _read("index.html")
    assets = {name: _read(name) for name in _FILES}
    headers = {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "no-referrer"}

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(html, headers=headers)

    @app.get("/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in assets:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(assets[name], media_type=_FILES[name], headers=headers)
