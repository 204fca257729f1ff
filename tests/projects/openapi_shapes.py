"""Check an answer against its component in the served OpenAPI schema (3.0: `nullable` is
turned into JSON Schema's null type so jsonschema can read it)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft7Validator


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(value) for value in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _convert(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@cache
def _components() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    document = json.loads(
        OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True))
    )
    return dict(_convert(document["components"]))


def assert_matches(component: str, body: Any) -> None:
    schema = {"$ref": f"#/components/schemas/{component}", "components": _components()}
    errors = [error.message for error in Draft7Validator(schema).iter_errors(body)]
    assert not errors, errors
