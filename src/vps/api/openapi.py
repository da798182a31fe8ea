"""OpenAPI as the API really behaves: 400 (never 422), one error shape, bearer auth."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_PUBLIC_PATHS: frozenset[str] = frozenset()


def install_openapi(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                if operation.get("parameters") or operation.get("requestBody"):
                    responses.setdefault(
                        "400",
                        {
                            "description": "Bad request: invalid parameters",
                            "content": {"application/json": {"schema": _ERROR_REF}},
                        },
                    )
                if path not in _PUBLIC_PATHS:
                    operation["security"] = [{"bearer": []}]
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        components["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API token: `Authorization: Bearer vps_...`",
            }
        }
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]
