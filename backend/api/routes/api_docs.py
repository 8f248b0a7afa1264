"""/docs (Swagger UI) and /redoc with their JS/CSS served from the installed
``fastapi_offline`` package: the pages work without internet and load nothing from outside."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.responses import HTMLResponse, Response

ASSET_DIR = files("fastapi_offline") / "static"
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
          "redoc.standalone.js": "text/javascript", "favicon.png": "image/png"}
PREFIX = "/docs/assets"
# ReDoc's sidebar shows Redocly's logo from their CDN (no option turns it off): served with
# our icon instead, so the page makes no request outside the service.
REWRITES = {"redoc.standalone.js": ((b"https://cdn.redoc.ly/redoc/logo-mini.svg",
                                     f"{PREFIX}/favicon.png".encode()),)}
OAUTH2_REDIRECT = "/docs/oauth2-redirect"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Interactive API docs (Swagger UI)."""
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url, title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{PREFIX}/swagger-ui.css", swagger_favicon_url=f"{PREFIX}/favicon.png",
        oauth2_redirect_url=OAUTH2_REDIRECT,
        # no badge fetched from the public validator service
        swagger_ui_parameters={"validatorUrl": None})


@router.get(OAUTH2_REDIRECT)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """API reference (ReDoc), without Google Fonts."""
    return get_redoc_html(openapi_url=request.app.openapi_url,
                          title=f"{request.app.title} - ReDoc",
                          redoc_js_url=f"{PREFIX}/redoc.standalone.js",
                          redoc_favicon_url=f"{PREFIX}/favicon.png", with_google_fonts=False)


@router.get(PREFIX + "/{name}")
async def asset(name: str) -> Response:
    """A file of the fixed list above (no path from the request is opened)."""
    if name not in ASSETS:
        raise HTTPException(404, "no such asset")
    return Response(_content(name), media_type=ASSETS[name],
                    headers={"Cache-Control": "public, max-age=86400"})


@cache
def _content(name: str) -> bytes:
    data = (ASSET_DIR / name).read_bytes()
    for old, new in REWRITES.get(name, ()):
        data = data.replace(old, new)
    return data
