"""Bodies parsed with ``model_validate_json`` (Rust, one pass) instead of FastAPI's
``request.json()`` + python-object validation, while staying in the OpenAPI schema."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
_REF = "#/components/schemas/{model}"
_registered: dict[str, type[BaseModel]] = {}


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
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
