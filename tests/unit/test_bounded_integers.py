"""Every integer a client can send the relay is bounded by its schema, within a signed 64-bit
column, so that an out-of-range one is a 422 naming the field, never a 500 from the database
or from arithmetic on it (#17 item 3: ``send_at`` 2^63-1 gave a 500). Walked from the API
description: every request body (the ones parsed from bytes too) and every query and path
parameter, through nested models, lists and optional fields."""

from collections.abc import Iterator
from typing import Any

import pytest

from server.app import create_app
from server.settings import RelaySettings
from shared.version import MAX_INT64

MIN_INT64 = -(2**63)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = tmp_path_factory.mktemp("relay") / "relay.db"
    return create_app(RelaySettings(db=f"sqlite:///{db}", auto_migrate=True)).openapi()


def _integers(
    node: Any, components: dict[str, Any], where: str, seen: set[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if ref is not None:
        name = ref.rsplit("/", 1)[-1]
        if name not in seen:  # recursive models are walked once
            yield from _integers(components[name], components, f"{where}<{name}>", seen | {name})
        return
    if node.get("type") == "integer":
        yield where, node
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for n, option in enumerate(node.get(key, [])):
            yield from _integers(option, components, f"{where}|{n}", seen)
    for name, field in node.get("properties", {}).items():
        yield from _integers(field, components, f"{where}.{name}", seen)
    for key in ("items", "additionalProperties"):
        yield from _integers(node.get(key), components, f"{where}[]", seen)


def _request_integers(api: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    components = api["components"]["schemas"]
    found = []
    for path, operations in api["paths"].items():
        for method, operation in operations.items():
            route = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                where = f"{route} {parameter['in']} {parameter['name']}"
                found += _integers(parameter.get("schema"), components, where, set())
            body = operation.get("requestBody", {}).get("content", {})
            for media in body.values():
                found += _integers(media.get("schema"), components, f"{route} body", set())
    return found


def test_the_walk_finds_the_integers_it_should(api: dict[str, Any]) -> None:
    names = {where.rsplit(".", 1)[-1].split("|")[0] for where, _ in _request_integers(api)}
    # A few known ones: if the walk stopped finding these, it would check nothing.
    assert {"send_at", "budget", "amount", "not_before", "weekly_limit"} <= names
    assert any(where.endswith("query after") for where, _ in _request_integers(api))


def test_every_integer_a_client_sends_is_bounded_within_64_bits(api: dict[str, Any]) -> None:
    unbounded = []
    for where, schema in _request_integers(api):
        if "const" in schema:
            continue
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        if low is None or high is None or not _within(low, high):
            unbounded.append(f"{where}: [{low}, {high}]")
    assert unbounded == []


def _within(low: float, high: float) -> bool:
    # FastAPI writes the bounds as floats, and 2^63 - 1 as a float is 2^63: compare as such.
    return float(low) >= float(MIN_INT64) and float(high) <= float(MAX_INT64)
