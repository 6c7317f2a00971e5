"""The OpenAPI document, made to describe the service as it answers.

Litestar documents handlers from their signatures: every error as its own
``{status_code, detail}`` body and every success as JSON. Here each operation gets the
error statuses it can answer, all with the one body of :mod:`orchestrator.errors`, and the
audio and event-stream endpoints their real content types. The rules are by what an
operation is (an upload, a path with an id, a call to a model), so a new route is
described without a table to keep. Swagger UI and ReDoc load their assets from this
service (``/schema/assets``), so the docs work without internet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from orchestrator.bodies import NO_BODY, json_body_type
from orchestrator.chat.schemas import ChatCompletion
from orchestrator.errors import ErrorBody
from orchestrator.speech.audio_output import FORMATS

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
ERROR_DESCRIPTIONS = {
    400: "Invalid request: the message (and `error.param`, when one field is at fault) "
         "names what is wrong",
    401: "Missing, wrong or revoked API key (AUTH_MODE=required)",
    403: "The key may not do this (an admin operation, or another user's data)",
    404: "No such resource, or one this key may not see",
    409: "Conflicts with the resource's state (an ended session, a version in use)",
    413: "Body, audio or text over the configured limit",
    415: "Unsupported media or audio format",
    429: "Over a per-key rate limit (Retry-After says when to retry)",
    502: "The model server failed the request",
    503: "A dependency is down or the feature is off (`error.code` says which)",
    504: "The model did not answer within TRITON_TIMEOUT_S",
}
ERROR_EXAMPLE = {"error": {"code": "not_found", "message": "session 's1' not found",
                           "type": "invalid_request_error",
                           "request_id": "3f0c9c1b6a0d4e0f9d1c2b3a4e5f6a7b",
                           "param": None}}

MODEL_PATHS = ("/v1/chat/completions", "/v1/audio/", "/v1/embeddings", "/api/tts/",
               "/api/voice-chat",
               "/api/users/{user_id}/memory/")
"""Operations that call a model: they can also answer 502, 503 and 504."""
AUDIO_TYPES = sorted({fmt.media_type for fmt in FORMATS.values()})


def sse_events(data: dict[str, Any], example: str) -> dict[str, Any]:
    """An event-stream, each event's ``data`` described by ``data`` (a string schema)."""
    return {"schema": {"type": "object", "required": ["data"], "properties": {
        "data": data, "event": {"type": "string"}, "id": {"type": "string"}}},
        "example": example}


def json_data(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "string", "contentMediaType": "application/json", "contentSchema": schema}


SPEECH_EVENT = {"type": "object", "required": ["type"], "properties": {
    "type": {"enum": ["speech.audio.delta", "speech.audio.done"]},
    "audio": {"type": "string", "contentEncoding": "base64"}}}
TRANSCRIPT_EVENT = {"type": "object", "required": ["type"], "properties": {
    "type": {"enum": ["transcript.text.delta", "transcript.text.done"]},
    "delta": {"type": "string"}, "text": {"type": "string"}}}
SUCCESS_CONTENT: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/audio/speech"): {
        **{media: {"schema": {"type": "string", "format": "binary"}} for media in AUDIO_TYPES},
        "text/event-stream": sse_events(
            json_data(SPEECH_EVENT), 'data: {"type": "speech.audio.delta", "audio": "…"}\n\n')},
    ("post", "/api/tts/synthesize"): {
        media: {"schema": {"type": "string", "format": "binary"}} for media in AUDIO_TYPES},
    ("post", "/v1/chat/completions"): {
        "application/json": {"schema": {"$ref": "#/components/schemas/ChatCompletion"}},
        "text/event-stream": sse_events(
            {"type": "string", "description": "a chat.completion.chunk object as JSON; the "
             "last event's data is [DONE]"},
            'data: {"object": "chat.completion.chunk", …}\n\ndata: [DONE]\n\n')},
    ("post", "/v1/audio/transcriptions"): {
        "text/plain": {"schema": {"type": "string"}},
        "text/vtt": {"schema": {"type": "string"}},
        "text/event-stream": sse_events(
            json_data(TRANSCRIPT_EVENT),
            'data: {"type": "transcript.text.delta", "delta": "Hello"}\n\n')},
    ("post", "/v1/audio/translations"): {
        "text/plain": {"schema": {"type": "string"}},
        "text/vtt": {"schema": {"type": "string"}}},
}
"""Success content besides (or instead of) what Litestar infers, by operation."""
JSON_SUCCESS_TOO = {("post", "/v1/audio/transcriptions"), ("post", "/v1/audio/translations")}
"""Operations whose JSON success body stays beside the extra content types above."""
PUBLIC = ("/api/ping", "/api/health")
SIGNED = ("/v1/twilio/voice",)
"""Called by Twilio, which sends no key: the request is signed (X-Twilio-Signature) and a
bad or missing signature is a 403."""
OTHER_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/realtime/calls"): {"required": True, "content": {
        "application/sdp": {"schema": {"type": "string", "description": "the SDP offer"}},
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["sdp"], "properties": {
                "sdp": {"type": "string", "description": "the SDP offer"},
                "session": {"type": "string", "description": "an OpenAI realtime session "
                            "configuration, JSON (applied as the call's first update)"}}}}}},
    ("post", "/v1/twilio/voice"): {"required": False, "content": {
        "application/x-www-form-urlencoded": {"schema": {
            "type": "object", "additionalProperties": {"type": "string"},
            "description": "Twilio's call parameters (CallSid, From, To, …), signed"}}}},
}
"""Request bodies that are not JSON, which Litestar cannot see (the handler reads them)."""


def error_statuses(method: str, path: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses one operation can answer, from what it is."""
    statuses: set[int] = set()
    if path in SIGNED:
        statuses.add(403)  # the signature is missing or wrong
    elif path not in PUBLIC:
        statuses.update({401, 429})  # a key is needed, and its limits apply
    if operation.get("parameters") or operation.get("requestBody"):
        statuses.add(400)
    if "{" in path:
        statuses.add(404)
    if "{user_id}" in path or path.startswith("/admin") or _names_a_user(operation):
        statuses.add(403)  # another user's data; an admin operation
    if "{session_id}" in path or path == "/api/voice-chat" or path.startswith("/admin/models"):
        statuses.add(409)  # an ended session; a version in use
    body = operation.get("requestBody", {}).get("content", {})
    if body:
        statuses.add(413)
    if "multipart/form-data" in body:
        statuses.add(415)
    if path.startswith(MODEL_PATHS) or path.startswith("/admin/models"):
        statuses.update({502, 503, 504})
    if path == "/api/health" or path.startswith(("/api/sessions", "/api/users", "/admin")) \
            or path == "/v1/realtime/client_secrets":
        statuses.add(503)  # the database
    if path == "/v1/realtime/calls":
        statuses.update({404, 409, 503})  # ?session_id= unknown or ended; draining, no STT
    return sorted(statuses)


def _names_a_user(operation: dict[str, Any]) -> bool:
    """A ``user_id`` query parameter: acting for a user the key may not act for is a 403."""
    return any(p.get("name") == "user_id" and p.get("in") == "query"
               for p in operation.get("parameters") or [])


def json_bodies(app: Any) -> dict[tuple[str, str], Any]:
    """(method, path) -> the type of each operation's JSON body."""
    bodies = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            target = json_body_type(handler)
            if target is not NO_BODY:
                for method in handler.http_methods:
                    bodies[(method.lower(), route.path_format)] = target
    return bodies


def describe_service(schema: dict[str, Any],
                     bodies: dict[tuple[str, str], Any] | None = None) -> dict[str, Any]:
    """Rewrite Litestar's document in place (and return it). ``bodies``: the JSON body
    types, documented by msgspec itself (Litestar drops bounds such as ``gt`` inside an
    optional field, so its schemas accept what the service refuses)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    bodies = bodies or {}
    body_types = list(dict.fromkeys(bodies.values()))
    refs, definitions = msgspec.json.schema_components(
        [ErrorBody, ChatCompletion, *body_types], ref_template="#/components/schemas/{name}")
    body_refs = dict(zip(body_types, refs[2:], strict=True))
    for name in [n for n in components if n.startswith(("ValidationException",
                                                        "NotAuthorizedException"))]:
        components.pop(name)  # Litestar's own error bodies: never sent
    components.update(definitions)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            if path in PUBLIC or path in SIGNED:
                operation["security"] = []  # no key needed
            if (method, path) in OTHER_BODIES:
                operation["requestBody"] = OTHER_BODIES[(method, path)]
            if (method, path) in bodies:
                target = bodies[(method, path)]
                operation["requestBody"] = {
                    "required": type(None) not in getattr(target, "__args__", ()),
                    "content": {"application/json": {"schema": body_refs[target]}}}
            responses = operation.setdefault("responses", {})
            for status in [s for s in responses if s[0] in "45"]:
                del responses[status]  # Litestar's {status_code, detail} shapes
            for status in error_statuses(method, path, operation):
                responses[str(status)] = {"description": ERROR_DESCRIPTIONS[status], "content": {
                    "application/json": {"schema": ERROR_REF, "example": ERROR_EXAMPLE}}}
            responses["default"] = {"description": "Any other error, in the same body",
                                    "content": {"application/json": {"schema": ERROR_REF}}}
            extra = SUCCESS_CONTENT.get((method, path))
            if extra:
                success = next(s for s in responses if s.startswith("2"))
                content = responses[success].setdefault("content", {})
                if (method, path) not in JSON_SUCCESS_TOO:
                    content.clear()
                content.update(extra)
    return schema


ASSETS_PATH = "/schema/assets"
ASSETS_PACKAGE = "drf_spectacular_sidecar"
"""Ships swagger-ui-dist and ReDoc's standalone bundle, kept current (installed without
its Django dependency: only the files are used, nothing is imported)."""


def docs_assets() -> Path | None:
    """The folder holding ``swagger-ui-dist/`` and ``redoc/``, when the package is here."""
    import importlib.util

    spec = importlib.util.find_spec(ASSETS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static" / ASSETS_PACKAGE
    return folder if (folder / "swagger-ui-dist" / "swagger-ui-bundle.js").is_file() else None


def render_plugins() -> tuple[list[Any], Any]:
    """Swagger UI (at /schema/swagger) and ReDoc (/schema/redoc) on local assets, and the
    router serving them; the CDN's when the assets package is missing."""
    from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
    from litestar.static_files import create_static_files_router

    folder = docs_assets()
    if folder is None:
        return [SwaggerRenderPlugin(), RedocRenderPlugin()], None
    swagger, redoc = f"{ASSETS_PATH}/swagger-ui-dist", f"{ASSETS_PATH}/redoc/bundles"
    no_icon = "<link rel='icon' href='data:,'>"
    plugins = [SwaggerRenderPlugin(js_url=f"{swagger}/swagger-ui-bundle.js",
                                   css_url=f"{swagger}/swagger-ui.css",
                                   standalone_preset_js_url=f"{swagger}/"
                                   "swagger-ui-standalone-preset.js", favicon=no_icon),
               RedocRenderPlugin(js_url=f"{redoc}/redoc.standalone.js", google_fonts=False,
                                 favicon=no_icon)]
    router = create_static_files_router(path=ASSETS_PATH, directories=[folder],
                                        include_in_schema=False, name="docs-assets")
    return plugins, router
