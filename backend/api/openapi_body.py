"""Bodies parsed with ``model_validate_json`` (Rust, one pass) instead of FastAPI's
``request.json()`` + python-object validation, while staying in the OpenAPI schema; and the
401/403 answers of every route that takes a key, documented from its scope dependency."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ValidationError

from backend.api.auth import API_KEY_HEADER, FORBIDDEN, Scope, permits
from backend.api.deps import require_admin, require_bot, require_viewer

M = TypeVar("M", bound=BaseModel)
_REF = "#/components/schemas/{model}"
_registered: dict[str, type[BaseModel]] = {}
_SCOPE_OF = {require_bot: "bot", require_admin: "admin", require_viewer: "viewer"}
_DETAIL = {"content": {"application/json": {"schema": {
    "type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}}}}}


def body_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads ``model`` from the raw body."""
    _registered[model.__name__] = model
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": _REF.format(model=model.__name__)}}}}}


async def parse_body(request: Request, model: type[M]) -> M:
    return parse_json(await request.body(), model)


def parse_json(body: bytes, model: type[M]) -> M:
    """Validate a raw JSON body; errors become FastAPI's usual 422 with ``body`` locations."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def install_body_schemas(app: FastAPI) -> None:
    """Add the raw-body models (and the models they reference) to components/schemas."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, model in _registered.items():
            js = model.model_json_schema(ref_template=_REF, mode="validation")
            for def_name, definition in js.pop("$defs", {}).items():
                components.setdefault(def_name, definition)
            components[name] = js
        document_auth(app, schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def route_scope(route: APIRoute) -> Scope | None:
    """The key scope a route needs (its require_* dependency, at any depth), or None."""
    pending = list(route.dependant.dependencies)
    while pending:
        dep = pending.pop()
        if dep.call in _SCOPE_OF:
            return _SCOPE_OF[dep.call]  # type: ignore[index]
        pending.extend(dep.dependencies)
    return None


def document_auth(app: FastAPI, schema: dict[str, Any]) -> None:
    """401 on every operation that takes a key; 403 where some key's scope is refused
    (``auth.permits``: admin routes, and writes of bot routes)."""
    for context in iter_route_contexts(app.routes):  # included routers, with their prefix
        route = context.route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        if (needed := route_scope(route)) is None:
            continue
        for method in route.methods:
            responses = schema["paths"][route.path_format][method.lower()]["responses"]
            responses["401"] = {"description": f"Missing or unknown API key (header "
                                               f"{API_KEY_HEADER})", **_DETAIL}
            if not all(permits(s, needed, method) for s in ("bot", "admin", "viewer")):
                responses["403"] = {"description": f"Wrong scope: {FORBIDDEN[needed]}",
                                    **_DETAIL}
