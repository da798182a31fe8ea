"""Every 400 of the API: bodies of create, PUT and PATCH, list query parameters, SSH key create
and path ids; each names the offending field, and nothing is created or changed."""

from __future__ import annotations

import base64
import os
import struct
from typing import Any

import httpx
import pytest

from tests.factories import CREATE_BODY, Factory, Tenant

SERVERS = "/api/v1/servers/"
VALID_CREATE = CREATE_BODY
VALID_PUT: dict[str, Any] = {
    "name": "web-server-updated",
    "hostname": "web-updated.example.com",
    "backups_enabled": True,
}
# Fields a client sets; the worker never touches them, so they are stable to compare.
EDITABLE = ("id", "name", "hostname", "backups_enabled", "plan", "os", "location")


def make_ed25519_key(comment: str = "test@example") -> str:
    kind = b"ssh-ed25519"
    blob = struct.pack(">I", len(kind)) + kind + struct.pack(">I", 32) + os.urandom(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode('ascii')} {comment}"


def assert_400(response: httpx.Response, field: str, code: str | set[str] | None = None) -> None:
    """A 400 `invalid_parameters` whose `fields` names `field` (with `code`, if given)."""
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_parameters", error
    assert error["request_id"] == response.headers["x-request-id"]
    assert isinstance(error["message"], str) and error["message"]
    named = {f["field"]: f for f in error["fields"]}
    assert field in named, error
    for problem in error["fields"]:
        assert set(problem) == {"field", "code", "message"}
        assert problem["message"]
    if code is not None:
        expected = {code} if isinstance(code, str) else code
        assert named[field]["code"] in expected, error


async def server_count(tenant: Tenant) -> int:
    response = await tenant.get(SERVERS)
    assert response.status_code == 200
    count: int = response.json()["count"]
    return count


async def editable(tenant: Tenant, server_id: int) -> dict[str, Any]:
    response = await tenant.get(f"{SERVERS}{server_id}/")
    assert response.status_code == 200
    body = response.json()
    return {key: body[key] for key in EDITABLE}


async def send(
    tenant: Tenant, how: str, server_id: int | None, fields: dict[str, Any]
) -> httpx.Response:
    """Send `fields` through create (on top of a valid body), PUT (idem) or PATCH (alone)."""
    if how == "create":
        return await tenant.post(SERVERS, json={**VALID_CREATE, **fields})
    if how == "put":
        return await tenant.put(f"{SERVERS}{server_id}/", json={**VALID_PUT, **fields})
    return await tenant.patch(f"{SERVERS}{server_id}/", json=fields)


async def prepare(factory: Factory, how: str) -> tuple[Tenant, int | None, dict[str, Any] | None]:
    """A tenant, and for PUT/PATCH an active server with a hostname and its editable fields."""
    tenant = await factory.tenant()
    if how == "create":
        return tenant, None, None
    server = await tenant.active_server(name="keep-me", hostname="keep.example.com")
    return tenant, server["id"], await editable(tenant, server["id"])


async def assert_untouched(
    tenant: Tenant, how: str, server_id: int | None, before: dict[str, Any] | None
) -> None:
    if how == "create":
        assert await server_count(tenant) == 0
    else:
        assert server_id is not None
        assert await editable(tenant, server_id) == before
        assert await server_count(tenant) == 1


# Missing required fields ------------------------------------------------------------------


@pytest.mark.parametrize("field", ["name", "plan_id", "os_id", "location"])
async def test_create_without_a_required_field(factory: Factory, field: str) -> None:
    tenant = await factory.tenant()
    body = {k: v for k, v in VALID_CREATE.items() if k != field}
    response = await tenant.post(SERVERS, json=body)
    assert_400(response, field, "required")
    assert [f["field"] for f in response.json()["error"]["fields"]] == [field]
    assert await server_count(tenant) == 0


async def test_create_with_an_empty_object_names_every_required_field(factory: Factory) -> None:
    tenant = await factory.tenant()
    response = await tenant.post(SERVERS, json={})
    assert response.status_code == 400
    fields = {f["field"]: f["code"] for f in response.json()["error"]["fields"]}
    assert fields == {
        "name": "required",
        "plan_id": "required",
        "os_id": "required",
        "location": "required",
    }
    assert await server_count(tenant) == 0


@pytest.mark.parametrize("field", ["name", "hostname", "backups_enabled"])
async def test_put_without_a_required_field(factory: Factory, field: str) -> None:
    tenant, server_id, before = await prepare(factory, "put")
    body = {k: v for k, v in VALID_PUT.items() if k != field}
    response = await tenant.put(f"{SERVERS}{server_id}/", json=body)
    assert_400(response, field, "required")
    assert [f["field"] for f in response.json()["error"]["fields"]] == [field]
    await assert_untouched(tenant, "put", server_id, before)


# Wrong JSON types: no coercion ------------------------------------------------------------

WRONG_TYPES: list[tuple[str, str, Any]] = [
    ("create", "plan_id", "1"),
    ("create", "plan_id", 1.0),
    ("create", "plan_id", True),
    ("create", "plan_id", None),
    ("create", "os_id", "5"),
    ("create", "os_id", 5.0),
    ("create", "name", 5),
    ("create", "name", ["web"]),
    ("create", "location", 1),
    ("create", "hostname", 5),
    ("create", "ssh_key_id", "1"),
    ("create", "backups_enabled", "true"),
    ("create", "backups_enabled", 1),
    ("put", "name", 5),
    ("put", "name", None),
    ("put", "hostname", None),
    ("put", "backups_enabled", "true"),
    ("put", "backups_enabled", 0),
    ("patch", "name", 5),
    ("patch", "hostname", {"fqdn": "a.example.com"}),
    ("patch", "backups_enabled", "true"),
    ("patch", "backups_enabled", 1),
]


@pytest.mark.parametrize(("how", "field", "value"), WRONG_TYPES)
async def test_wrong_json_types_are_not_coerced(
    factory: Factory, how: str, field: str, value: Any
) -> None:
    tenant, server_id, before = await prepare(factory, how)
    response = await send(tenant, how, server_id, {field: value})
    assert_400(response, field, "wrong_type")
    await assert_untouched(tenant, how, server_id, before)


@pytest.mark.parametrize("field", ["name", "hostname", "backups_enabled"])
async def test_patch_refuses_an_explicit_null(factory: Factory, field: str) -> None:
    tenant, server_id, before = await prepare(factory, "patch")
    response = await send(tenant, "patch", server_id, {field: None})
    # null is not a string (PUT says wrong_type); PATCH may call it a broken rule instead.
    assert_400(response, field, {"wrong_type", "invalid"})
    await assert_untouched(tenant, "patch", server_id, before)


# Unknown fields: rejected, named, and not applied -----------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "active"), ("ip_address", "192.0.2.250"), ("id", 1), ("message", "hi")],
)
async def test_create_rejects_unknown_fields(factory: Factory, field: str, value: Any) -> None:
    tenant = await factory.tenant()
    response = await tenant.post(SERVERS, json={**VALID_CREATE, field: value})
    assert_400(response, field, "unknown_field")
    assert await server_count(tenant) == 0


async def test_create_rejects_an_account_id_and_creates_nothing_anywhere(
    factory: Factory,
) -> None:
    tenant = await factory.tenant()
    other = await factory.tenant()
    other_account = (await other.get("/api/v1/account/")).json()["id"]
    before = (await tenant.get("/api/v1/account/")).json()["balance"]
    response = await tenant.post(SERVERS, json={**VALID_CREATE, "account_id": other_account})
    assert_400(response, "account_id", "unknown_field")
    assert await server_count(tenant) == 0
    assert await server_count(other) == 0
    assert (await tenant.get("/api/v1/account/")).json()["balance"] == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "stopped"),
        ("account_id", 1),
        ("ip_address", "192.0.2.250"),  # in no pool: it can only come from the body
        ("id", 1),
        ("plan_id", 2),
        ("location", "us-east"),
    ],
)
async def test_patch_rejects_unknown_fields_and_applies_nothing(
    factory: Factory, field: str, value: Any
) -> None:
    tenant, server_id, before = await prepare(factory, "patch")
    response = await tenant.patch(f"{SERVERS}{server_id}/", json={"name": "renamed", field: value})
    assert_400(response, field, "unknown_field")
    assert [f["field"] for f in response.json()["error"]["fields"]] == [field]
    await assert_untouched(tenant, "patch", server_id, before)
    server = (await tenant.get(f"{SERVERS}{server_id}/")).json()
    assert server["status"] == "active"
    assert server["ip_address"] != "192.0.2.250"


async def test_put_rejects_unknown_fields_and_applies_nothing(factory: Factory) -> None:
    tenant, server_id, before = await prepare(factory, "put")
    response = await tenant.put(f"{SERVERS}{server_id}/", json={**VALID_PUT, "status": "stopped"})
    assert_400(response, "status", "unknown_field")
    await assert_untouched(tenant, "put", server_id, before)
    assert (await tenant.get(f"{SERVERS}{server_id}/")).json()["status"] == "active"


# Unknown plan, operating system, location and SSH key -------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("plan_id", 999),
        ("plan_id", 0),
        ("plan_id", -1),
        ("os_id", 1),
        ("os_id", 999),
        ("os_id", 0),
        ("location", "mars"),
        ("location", "US-WEST"),
        ("location", ""),
        ("location", "us-west "),
        ("ssh_key_id", 999999),
        ("ssh_key_id", 0),
    ],
)
async def test_create_with_an_unknown_reference(factory: Factory, field: str, value: Any) -> None:
    tenant = await factory.tenant()
    response = await tenant.post(SERVERS, json={**VALID_CREATE, field: value})
    assert_400(response, field, "unknown")
    assert await server_count(tenant) == 0


@pytest.mark.parametrize("field", ["plan_id", "os_id", "ssh_key_id"])
@pytest.mark.parametrize("value", [2**31, 99999999999, 2**64])
async def test_create_with_an_id_beyond_the_database_range(
    factory: Factory, field: str, value: int
) -> None:
    """An id too large for the id column names nothing: 400 like any unknown id, not 500."""
    tenant = await factory.tenant()
    response = await tenant.post(SERVERS, json={**VALID_CREATE, field: value})
    assert_400(response, field, {"unknown", "invalid"})
    assert await server_count(tenant) == 0


async def test_create_with_a_nul_character_in_location(factory: Factory) -> None:
    tenant = await factory.tenant()
    response = await tenant.post(SERVERS, json={**VALID_CREATE, "location": "us-\u0000west"})
    assert_400(response, "location", {"unknown", "invalid"})
    assert await server_count(tenant) == 0


async def test_another_accounts_ssh_key_is_unknown_without_saying_so(factory: Factory) -> None:
    owner = await factory.tenant()
    created = await owner.post(
        "/api/v1/ssh-keys/", json={"name": "owner", "public_key": make_ed25519_key()}
    )
    assert created.status_code == 201
    key_id = created.json()["id"]
    tenant = await factory.tenant()

    theirs = await tenant.post(SERVERS, json={**VALID_CREATE, "ssh_key_id": key_id})
    missing_id = key_id + 1_000_000
    missing = await tenant.post(SERVERS, json={**VALID_CREATE, "ssh_key_id": missing_id})
    assert_400(theirs, "ssh_key_id", "unknown")
    assert_400(missing, "ssh_key_id", "unknown")
    theirs_error, missing_error = theirs.json()["error"], missing.json()["error"]
    assert theirs_error.keys() == missing_error.keys()
    assert theirs_error["message"].replace(str(key_id), "N") == missing_error["message"].replace(
        str(missing_id), "N"
    )
    assert [
        {**f, "message": f["message"].replace(str(key_id), "N")} for f in theirs_error["fields"]
    ] == [
        {**f, "message": f["message"].replace(str(missing_id), "N")}
        for f in missing_error["fields"]
    ]
    assert "owner" not in theirs.text
    assert await server_count(tenant) == 0
    assert await server_count(owner) == 0


# Names and hostnames ----------------------------------------------------------------------

BAD_NAMES = [
    "",
    "a" * 64,
    "-web",
    "web-",
    "web_01",
    "wéb-01",
    "web 01",
    "web-01\n",
    "web.01",
]


@pytest.mark.parametrize("how", ["create", "put", "patch"])
@pytest.mark.parametrize("name", BAD_NAMES)
async def test_invalid_names_are_refused(factory: Factory, how: str, name: str) -> None:
    tenant, server_id, before = await prepare(factory, how)
    response = await send(tenant, how, server_id, {"name": name})
    assert_400(response, "name", "invalid")
    await assert_untouched(tenant, how, server_id, before)


@pytest.mark.parametrize("name", ["a" * 63, "a", "7", "Web-Server-01", "a-b"])
async def test_valid_names_are_accepted(factory: Factory, name: str) -> None:
    tenant = await factory.tenant()
    created = await tenant.post(SERVERS, json={**VALID_CREATE, "name": name})
    assert created.status_code == 201, created.text
    assert created.json()["name"] == name
    server_id = created.json()["id"]
    patched = await tenant.patch(f"{SERVERS}{server_id}/", json={"name": name[::-1]})
    assert patched.status_code == 200, patched.text
    assert (await tenant.get(f"{SERVERS}{server_id}/")).json()["name"] == name[::-1]


# 254 characters in all: four labels of 63, 63, 63 and 62 characters with three dots.
HOSTNAME_254 = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 62])
HOSTNAME_253 = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
BAD_HOSTNAMES = [
    "localhost",
    "-web.example.com",
    "web-.example.com",
    HOSTNAME_254,
    "a" * 64 + ".example.com",
    "web..example.com",
    ".example.com",
    "web.example.123",
    "",
    "web_01.example.com",
    "wéb.example.com",
    "web 01.example.com",
]


@pytest.mark.parametrize("how", ["create", "put", "patch"])
@pytest.mark.parametrize("hostname", BAD_HOSTNAMES)
async def test_invalid_hostnames_are_refused(factory: Factory, how: str, hostname: str) -> None:
    tenant, server_id, before = await prepare(factory, how)
    response = await send(tenant, how, server_id, {"hostname": hostname})
    assert_400(response, "hostname", "invalid")
    await assert_untouched(tenant, how, server_id, before)


def test_the_long_hostnames_have_the_intended_lengths() -> None:
    assert len(HOSTNAME_254) == 254 and len(HOSTNAME_253) == 253


@pytest.mark.parametrize(
    "hostname",
    [
        "web02.example.com",
        "a.co",
        "WEB-01.Example.COM",
        "123.example.com",
        "a" * 63 + ".example.com",
        HOSTNAME_253,
    ],
)
async def test_valid_hostnames_are_accepted(factory: Factory, hostname: str) -> None:
    tenant = await factory.tenant()
    created = await tenant.post(SERVERS, json={**VALID_CREATE, "hostname": hostname})
    assert created.status_code == 201, created.text
    assert created.json()["hostname"] == hostname
    server_id = created.json()["id"]
    put = await tenant.put(f"{SERVERS}{server_id}/", json={**VALID_PUT, "hostname": hostname})
    assert put.status_code == 200, put.text
    assert (await tenant.get(f"{SERVERS}{server_id}/")).json()["hostname"] == hostname


async def test_all_problems_are_named_at_once(factory: Factory) -> None:
    tenant = await factory.tenant()
    response = await tenant.post(
        SERVERS,
        json={
            "name": "bad_name",
            "plan_id": 999,
            "os_id": 999,
            "location": "mars",
            "hostname": "x",
        },
    )
    assert response.status_code == 400
    fields = {f["field"] for f in response.json()["error"]["fields"]}
    assert fields == {"name", "plan_id", "os_id", "location", "hostname"}
    assert await server_count(tenant) == 0


# Bodies that are not a JSON object --------------------------------------------------------


NOT_OBJECTS = [
    b'[{"name": "web-server-01", "plan_id": 1, "os_id": 5, "location": "us-west"}]',
    b'"web-server-01"',
    b"42",
    b"true",
    b"null",
]


@pytest.mark.parametrize("how", ["create", "put", "patch"])
@pytest.mark.parametrize("content", NOT_OBJECTS)
async def test_a_body_that_is_not_an_object(factory: Factory, how: str, content: bytes) -> None:
    tenant, server_id, before = await prepare(factory, how)
    path = SERVERS if how == "create" else f"{SERVERS}{server_id}/"
    method = {"create": "POST", "put": "PUT", "patch": "PATCH"}[how]
    response = await tenant.request(
        method, path, content=content, headers={"Content-Type": "application/json"}
    )
    assert_400(response, "body")
    await assert_untouched(tenant, how, server_id, before)


@pytest.mark.parametrize("how", ["create", "put", "patch"])
@pytest.mark.parametrize(
    "content", [b"{", b'{"name": "web-server-01",}', b"{'name': 'x'}", b"nul", b'{"a": 1}}']
)
async def test_malformed_json(factory: Factory, how: str, content: bytes) -> None:
    tenant, server_id, before = await prepare(factory, how)
    path = SERVERS if how == "create" else f"{SERVERS}{server_id}/"
    method = {"create": "POST", "put": "PUT", "patch": "PATCH"}[how]
    response = await tenant.request(
        method, path, content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "malformed_json"
    assert error["request_id"] == response.headers["x-request-id"]
    assert error["message"]
    await assert_untouched(tenant, how, server_id, before)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
async def test_a_non_json_content_type_is_refused(factory: Factory, content_type: str) -> None:
    """A valid JSON text sent under another content type is not read as JSON."""
    tenant = await factory.tenant()
    response = await tenant.post(
        SERVERS,
        content=httpx.Request("POST", "/", json=VALID_CREATE).content,
        headers={"Content-Type": content_type},
    )
    assert_400(response, "body")
    assert await server_count(tenant) == 0


async def test_a_missing_body_is_refused(factory: Factory) -> None:
    tenant = await factory.tenant()
    response = await tenant.post(SERVERS)
    assert_400(response, "body", "required")
    assert await server_count(tenant) == 0


async def test_json_with_a_charset_is_accepted(factory: Factory) -> None:
    tenant = await factory.tenant()
    response = await tenant.post(
        SERVERS,
        content=httpx.Request("POST", "/", json=VALID_CREATE).content,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201, response.text


# List query parameters --------------------------------------------------------------------


BAD_QUERIES = [
    ("status", "bogus"),
    ("status", ""),
    ("status", "ACTIVE"),
    ("status", "deleting"),
    ("location", "mars"),
    ("location", ""),
    ("location", "us-\u0000"),
    ("page", "0"),
    ("page", "-1"),
    ("page", "abc"),
    ("page", "1.5"),
    ("page_size", "0"),
    ("page_size", "101"),
    ("page_size", "-5"),
    ("page_size", "abc"),
]


@pytest.mark.parametrize(("field", "value"), BAD_QUERIES)
async def test_list_refuses_bad_query_parameters(factory: Factory, field: str, value: str) -> None:
    tenant = await factory.tenant()
    response = await tenant.get(SERVERS, params={field: value})
    assert_400(response, field)


async def test_list_names_every_bad_query_parameter(factory: Factory) -> None:
    tenant = await factory.tenant()
    response = await tenant.get(
        SERVERS, params={"status": "bogus", "location": "mars", "page": "0", "page_size": "101"}
    )
    assert response.status_code == 400
    fields = {f["field"] for f in response.json()["error"]["fields"]}
    assert {"page", "page_size"} <= fields
    follow_up = await tenant.get(SERVERS, params={"status": "bogus", "location": "mars"})
    assert {f["field"] for f in follow_up.json()["error"]["fields"]} == {"status", "location"}


async def test_list_accepts_the_paging_limits(factory: Factory) -> None:
    tenant = await factory.tenant()
    await tenant.create_server()
    for params in ({"page_size": "1"}, {"page_size": "100"}, {"page": "1"}):
        response = await tenant.get(SERVERS, params=params)
        assert response.status_code == 200, (params, response.text)
        assert response.json()["count"] == 1


async def test_list_with_an_absurd_page_number_is_not_a_server_error(factory: Factory) -> None:
    tenant = await factory.tenant()
    await tenant.create_server()
    response = await tenant.get(SERVERS, params={"page": str(10**30)})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert_400(response, "page")
    else:
        assert response.json()["results"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "0"}, "page"),
        ({"page": "abc"}, "page"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "101"}, "page_size"),
    ],
)
async def test_ssh_key_list_refuses_bad_paging(
    factory: Factory, params: dict[str, str], field: str
) -> None:
    tenant = await factory.tenant()
    assert_400(await tenant.get("/api/v1/ssh-keys/", params=params), field)


# Path ids ---------------------------------------------------------------------------------

SERVER_ID_ENDPOINTS = [
    ("GET", "", None),
    ("PUT", "", VALID_PUT),
    ("PATCH", "", {"name": "x"}),
    ("DELETE", "", None),
    ("POST", "start/", None),
    ("POST", "stop/", None),
    ("POST", "reboot/", None),
]


@pytest.mark.parametrize(("method", "suffix", "body"), SERVER_ID_ENDPOINTS)
@pytest.mark.parametrize("server_id", ["abc", "1.5", "1e3", "0x10"])
async def test_a_non_integer_server_id_is_a_400(
    factory: Factory, method: str, suffix: str, body: Any, server_id: str
) -> None:
    tenant = await factory.tenant()
    response = await tenant.request(method, f"{SERVERS}{server_id}/{suffix}", json=body)
    assert_400(response, "server_id", "wrong_type")


@pytest.mark.parametrize(("method", "suffix", "body"), SERVER_ID_ENDPOINTS)
@pytest.mark.parametrize("server_id", [0, -1, 2**31, 99999999999, 10**30])
async def test_an_out_of_range_server_id_is_a_404(
    factory: Factory, method: str, suffix: str, body: Any, server_id: int
) -> None:
    tenant = await factory.tenant()
    response = await tenant.request(method, f"{SERVERS}{server_id}/{suffix}", json=body)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"
    assert "fields" not in response.json()["error"]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_ssh_key_path_ids(factory: Factory, method: str) -> None:
    tenant = await factory.tenant()
    assert_400(await tenant.request(method, "/api/v1/ssh-keys/abc/"), "key_id", "wrong_type")
    for key_id in (0, -1, 99999999999):
        response = await tenant.request(method, f"/api/v1/ssh-keys/{key_id}/")
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"


# SSH key create ---------------------------------------------------------------------------


def _rsa_key(bits: int) -> str:
    def string(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    modulus = (1 << (bits - 1)) | 1
    blob = (
        string(b"ssh-rsa")
        + string(b"\x01\x00\x01")
        + string(b"\x00" + modulus.to_bytes(bits // 8, "big"))
    )
    return f"ssh-rsa {base64.b64encode(blob).decode('ascii')} rsa@example"


def _ed25519_with(
    key_bytes: bytes, kind: bytes = b"ssh-ed25519", label: str = "ssh-ed25519"
) -> str:
    blob = struct.pack(">I", len(kind)) + kind + struct.pack(">I", len(key_bytes)) + key_bytes
    return f"{label} {base64.b64encode(blob).decode('ascii')} x@example"


BAD_PUBLIC_KEYS = [
    "",
    "not a key",
    "ssh-ed25519",
    "ssh-ed25519 !!!not-base64!!!",
    "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
    _ed25519_with(b"\x01" * 31),
    _ed25519_with(b"\x01" * 32, label="ssh-rsa"),
    _ed25519_with(b"\x01" * 32) + "\nssh-ed25519 AAAA second",
    _rsa_key(1024),
    "ssh-ed25519 " + "A" * 20000,
]


@pytest.mark.parametrize("public_key", BAD_PUBLIC_KEYS)
async def test_ssh_key_create_refuses_invalid_keys(factory: Factory, public_key: str) -> None:
    tenant = await factory.tenant()
    response = await tenant.post(
        "/api/v1/ssh-keys/", json={"name": "laptop", "public_key": public_key}
    )
    assert_400(response, "public_key", "invalid")
    assert (await tenant.get("/api/v1/ssh-keys/")).json()["count"] == 0


def test_the_rsa_helper_builds_a_valid_2048_bit_key() -> None:
    """The 1024-bit case above fails for its size, not for a broken helper."""
    from vps.domain.ssh_keys import parse_public_key

    assert parse_public_key(_rsa_key(2048)).key_type == "ssh-rsa"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"public_key": "KEY"}, "name", "required"),
        ({"name": "laptop"}, "public_key", "required"),
        ({"name": 5, "public_key": "KEY"}, "name", "wrong_type"),
        ({"name": "laptop", "public_key": ["KEY"]}, "public_key", "wrong_type"),
        (
            {"name": "laptop", "public_key": "KEY", "fingerprint": "SHA256:x"},
            "fingerprint",
            "unknown_field",
        ),
        ({"name": "laptop", "public_key": "KEY", "id": 1}, "id", "unknown_field"),
        ({"name": "", "public_key": "KEY"}, "name", "invalid"),
        ({"name": "   ", "public_key": "KEY"}, "name", "invalid"),
        ({"name": "n" * 101, "public_key": "KEY"}, "name", "invalid"),
        ({"name": "lap\u0000top", "public_key": "KEY"}, "name", "invalid"),
        ({"name": "laptop", "public_key": "KEY\u0000"}, "public_key", "invalid"),
    ],
    ids=[
        "no-name",
        "no-key",
        "name-int",
        "key-list",
        "fingerprint-field",
        "id-field",
        "name-empty",
        "name-blank",
        "name-101",
        "name-nul",
        "key-comment-nul",
    ],
)
async def test_ssh_key_create_refuses_bad_bodies(
    factory: Factory, body: dict[str, Any], field: str, code: str
) -> None:
    tenant = await factory.tenant()
    key = make_ed25519_key()
    # "KEY" stands for a fresh valid key; "KEY\0" for the same with a NUL in its comment.
    filled = {k: (key + v[3:] if v in ("KEY", "KEY\u0000") else v) for k, v in body.items()}
    response = await tenant.post("/api/v1/ssh-keys/", json=filled)
    assert_400(response, field, code)
    assert (await tenant.get("/api/v1/ssh-keys/")).json()["count"] == 0


@pytest.mark.parametrize("content", NOT_OBJECTS)
async def test_ssh_key_create_refuses_a_body_that_is_not_an_object(
    factory: Factory, content: bytes
) -> None:
    tenant = await factory.tenant()
    response = await tenant.post(
        "/api/v1/ssh-keys/", content=content, headers={"Content-Type": "application/json"}
    )
    assert_400(response, "body")
    malformed = await tenant.post(
        "/api/v1/ssh-keys/", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_json"
    assert (await tenant.get("/api/v1/ssh-keys/")).json()["count"] == 0
