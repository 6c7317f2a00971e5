"""JSON request bodies decoded strictly, as their schema says.

Litestar converts handler arguments with msgspec's lax rules (``strict=False``), which
query strings need, but for a JSON body it means ``{"admin": 0}`` is taken as ``false`` and
``{"admin": 1}`` as ``true``: a body the schema forbids is accepted. This hook decodes each
JSON body once more, strictly, before the handler runs; a wrong type is a 400 naming the
field (``Expected `bool`, got `int` - at `$.admin```).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request
from litestar.enums import RequestEncodingType

from orchestrator.errors import InvalidRequest

NO_BODY = object()


def json_body_type(handler: Any) -> Any:
    """The type of a handler's JSON ``data`` argument, or ``NO_BODY``."""
    field = handler.parsed_fn_signature.parameters.get("data")
    media = getattr(getattr(field, "kwarg_definition", None), "media_type", None)
    json_body = field is not None and media in (None, RequestEncodingType.JSON)
    return field.annotation if json_body else NO_BODY


async def strict_json_body(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook: refuse a JSON body that only lax decoding would accept."""
    target = json_body_type(request.route_handler)
    if target is NO_BODY:
        return
    body = await request.body()
    if not body.strip():
        return  # Litestar answers for a missing body (or the handler's default applies)
    try:
        raw = _integral_floats_as_ints(msgspec.json.decode(body))
        refuse = getattr(target, "__refuse__", None)
        if refuse is not None:  # the type words its own refusals of fields it lists
            refuse(raw)
        msgspec.convert(raw, type=target, strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid body: {exc}", param=param_of(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"malformed JSON: {exc}") from None


_AT = re.compile(r"- at `\$((?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*)`$")
_UNKNOWN = re.compile(r"unknown field `([^`]+)`")


def param_of(message: str) -> str | None:
    """The body field a msgspec error is about, OpenAI style (``messages[0].role``):
    ``Expected `int`, got `str` - at `$.n``` -> ``n``; an unknown field is named too."""
    at = _AT.search(message)
    path = at.group(1).lstrip(".") if at else ""
    unknown = _UNKNOWN.search(message)
    if unknown:
        path = f"{path}.{unknown.group(1)}" if path else unknown.group(1)
    return path or None


def _integral_floats_as_ints(value: Any) -> Any:
    """``1.0`` -> ``1``: JSON Schema counts it an integer, msgspec's strict mode does not
    (an int still fits a float field). Iterative: bodies may nest deeper than Python's
    recursion limit."""
    root = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        container, key = stack.pop()
        item = container[key]
        if isinstance(item, float) and item.is_integer() and abs(item) < 2**63:
            container[key] = int(item)
        elif isinstance(item, dict):
            stack.extend((item, k) for k in item)
        elif isinstance(item, list):
            stack.extend((item, i) for i in range(len(item)))
    return root[0]
