"""Model references in request bodies: ``"stt"`` (the promoted version) or ``"stt:2"``
(``"stt/2"`` is accepted too)."""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

from orchestrator.errors import InvalidRequest, NotFound

_REF = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)(?:[:/](?P<version>[0-9]+))?$")
ModelRef = Annotated[str, msgspec.Meta(
    min_length=1, max_length=128,
    pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*([:/][1-9][0-9]*)?$",
    description="A model name, optionally with a version: llm, stt:2")]
"""The schema of a ``model`` field (what :func:`parse_model_ref` accepts)."""


def parse_model_ref(ref: str, *, param: str = "model") -> tuple[str, str]:
    """Split ``"stt:2"`` into ``("stt", "2")``; ``"stt"`` gives ``("stt", "")``.

    The empty version means "the promoted one" (``TritonClient.default_versions``);
    pass the version on as ``client.infer(..., version=version)``. Anything else
    (``"stt:"``, ``"stt:latest"``, ``"stt:0"``) is a 400 naming the field.
    """
    match = _REF.match(ref.strip()) if isinstance(ref, str) else None
    if match is None or match["version"] == "0" or (match["version"] or "").startswith("0"):
        raise InvalidRequest(f"{param}: expected a model name, optionally with a version "
                             f"number (e.g. stt or stt:2), not {ref!r}")
    return match["name"], match["version"] or ""


def version_for(ref: str, model: str, *, openai_names: tuple[str, ...] = (),
                param: str = "model") -> str:
    """The version of ``model`` that ``ref`` asks for: ``model`` or ``model:N``; a name
    starting with one of ``openai_names`` (OpenAI's, e.g. ``gpt-``) means the promoted
    version (""); any other model is a 404 naming ``param``."""
    if openai_names and ref.startswith(openai_names):
        return ""
    name, version = parse_model_ref(ref, param=param)
    if name != model:
        raise NotFound(f"model {ref!r} does not exist: use {model!r} or '{model}:<version>' "
                       f"(GET /v1/models lists them)", param=param)
    return version
