"""The published contract (OpenAPI and docs) and the answers for routes that do not exist."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import Factory

OPENAPI = "/api/v1/openapi.json"
ERROR_REF = "#/components/schemas/ErrorResponse"
SPEC_OPERATIONS = {
    "/api/v1/servers/": {"get", "post"},
    "/api/v1/servers/{server_id}/": {"get", "put", "patch", "delete"},
    "/api/v1/servers/{server_id}/start/": {"post"},
    "/api/v1/servers/{server_id}/stop/": {"post"},
    "/api/v1/servers/{server_id}/reboot/": {"post"},
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get(OPENAPI)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def error_schema(operation: dict[str, Any], status: str) -> Any:
    response = operation["responses"].get(status)
    if response is None:
        return None
    return response.get("content", {}).get("application/json", {}).get("schema")


async def test_openapi_is_served_without_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get(OPENAPI)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["openapi"].startswith("3.")


async def test_openapi_never_mentions_fastapis_validation_422(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get(OPENAPI)).json()
    text = str(document)
    for path, method, operation in operations(document):
        # The only 422 is a reused Idempotency-Key, on the operations that accept one.
        if "422" in operation["responses"]:
            parameters = {p["name"] for p in operation.get("parameters", [])}
            assert "Idempotency-Key" in parameters, (path, method)
    assert "HTTPValidationError" not in text
    assert '"ValidationError"' not in text


async def test_the_spec_paths_and_methods_are_published(openapi: dict[str, Any]) -> None:
    paths = openapi["paths"]
    for path, methods in SPEC_OPERATIONS.items():
        assert path in paths, path
        assert {m for m in paths[path] if m in HTTP_METHODS} == methods, path
    assert sum(len(m) for m in SPEC_OPERATIONS.values()) == 9


def test_every_operation_answers_errors_in_the_error_shape(
    openapi: dict[str, Any],
) -> None:
    every = operations(openapi)
    assert len([path for path, _, _ in every if path in SPEC_OPERATIONS]) == 9
    for path, method, operation in every:
        responses = operation["responses"]
        assert "HTTPValidationError" not in str(responses.get("422", ""))
        documented = [error_schema(operation, s) for s in ("400", "401")]
        assert {"$ref": ERROR_REF} in documented, (path, method, responses)
        # Every operation needs a token, so every one documents its 401.
        assert error_schema(operation, "401") == {"$ref": ERROR_REF}, (path, method)
        for status in responses:
            if status.startswith(("4", "5")):
                assert error_schema(operation, status) == {"$ref": ERROR_REF}, (path, method)


def test_every_operation_with_input_documents_a_400(openapi: dict[str, Any]) -> None:
    for path, method, operation in operations(openapi):
        if operation.get("parameters") or operation.get("requestBody"):
            assert error_schema(operation, "400") == {"$ref": ERROR_REF}, (path, method)


def test_the_error_schema_has_the_error_shape(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    assert schemas["ErrorResponse"]["required"] == ["error"]
    detail_ref = schemas["ErrorResponse"]["properties"]["error"]["$ref"]
    detail = schemas[detail_ref.rsplit("/", 1)[1]]
    assert {"code", "message", "request_id"} <= set(detail["required"])
    assert {"fields", "required", "available"} <= set(detail["properties"])


def test_every_operation_requires_the_bearer_token(openapi: dict[str, Any]) -> None:
    schemes = openapi["components"]["securitySchemes"]
    assert schemes["bearer"]["type"] == "http"
    assert schemes["bearer"]["scheme"] == "bearer"
    for path, method, operation in operations(openapi):
        assert operation.get("security") == [{"bearer": []}], (path, method)


def test_request_bodies_are_documented_strictly(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    create = schemas["CreateServerIn"]
    assert set(create["required"]) == {"name", "plan_id", "os_id", "location"}
    assert create["properties"]["plan_id"]["type"] == "integer"
    assert create.get("additionalProperties") is False
    assert set(schemas["ReplaceServerIn"]["required"]) == {"name", "hostname", "backups_enabled"}
    assert not schemas["PatchServerIn"].get("required")


async def test_the_docs_page_is_html(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()
    assert OPENAPI in response.text


# Routes that do not exist -----------------------------------------------------------------


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nothing/",
        "/api/v1/servers/1/explode/",
        "/api/v2/servers/",
        "/nothing",
        "/panel/nothing",
    ],
)
async def test_an_unknown_route_is_a_404_in_the_error_shape(factory: Factory, path: str) -> None:
    tenant = await factory.tenant()
    assert_error(await tenant.get(path), 404, "not_found")
    assert_error(await factory.http.get(path), 404, "not_found")


WRONG_METHODS = [
    ("PUT", "/api/v1/servers/", {"GET", "POST"}),
    ("DELETE", "/api/v1/servers/", {"GET", "POST"}),
    ("POST", "/api/v1/servers/1/", {"GET", "PUT", "PATCH", "DELETE"}),
    ("GET", "/api/v1/servers/1/start/", {"POST"}),
    ("DELETE", "/api/v1/plans/", {"GET"}),
    ("PATCH", "/api/v1/ssh-keys/", {"GET", "POST"}),
]


@pytest.mark.parametrize(("method", "path", "allowed"), WRONG_METHODS)
async def test_a_wrong_method_is_a_405_in_the_error_shape(
    factory: Factory, method: str, path: str, allowed: set[str]
) -> None:
    tenant = await factory.tenant()
    assert_error(await tenant.request(method, path), 405, "method_not_allowed")
    assert_error(await factory.http.request(method, path), 405, "method_not_allowed")


@pytest.mark.parametrize(("method", "path", "allowed"), WRONG_METHODS)
async def test_a_405_allows_every_method_of_the_path(
    factory: Factory, method: str, path: str, allowed: set[str]
) -> None:
    """RFC 9110 section 15.5.6: a 405 MUST list the methods the resource supports."""
    tenant = await factory.tenant()
    response = await tenant.request(method, path)
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


async def test_a_wrong_method_changes_nothing(factory: Factory) -> None:
    tenant = await factory.tenant()
    server = await tenant.create_server()
    response = await tenant.request(
        "POST", f"/api/v1/servers/{server['id']}/", json={"name": "changed"}
    )
    assert response.status_code == 405
    listing = (await tenant.get("/api/v1/servers/")).json()
    assert listing["count"] == 1
    assert listing["results"][0]["name"] == server["name"]
