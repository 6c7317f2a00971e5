"""The service's error tree, and the one place that maps it to HTTP and WebSocket errors.

::

    AppError                      500 internal_error
    ├── InvalidRequest            400 invalid_request
    │   └── InvalidAudio          400 invalid_audio
    ├── Unauthorized              401 unauthorized          (WWW-Authenticate: Bearer)
    ├── Forbidden                 403 forbidden
    ├── NotFound                  404 not_found
    ├── Conflict                  409 conflict
    ├── PayloadTooLarge           413 payload_too_large
    ├── UnsupportedMediaType      415 unsupported_media_type
    ├── RateLimited               429 rate_limited          (Retry-After, x-ratelimit-*)
    ├── ServiceDisabled           503 service_disabled      (LLM_ENABLED=false, …)
    ├── MemoryUnavailable         503 memory_unavailable    (Milvus or the embedder down)
    └── InferenceError            502 inference_error
        ├── InferenceInvalidInput 400 inference_invalid_input
        ├── InferenceUnavailable  503 inference_unavailable
        │   └── ModelNotReady     503 model_not_ready
        └── InferenceTimeout      504 inference_timeout

Storage raises its own tree (``storage.errors``), mapped here too: ``RecordNotFound``
-> 404 not_found, ``SessionEnded`` -> 409 session_ended, ``StorageFull`` -> 507 storage_full,
``StorageUnavailable`` -> 503 storage_unavailable, any other ``StorageError`` -> 500 storage_error.

Every error body has the same JSON shape, OpenAI's (its SDKs parse it)::

    {"error": {"code": "not_found", "message": "…", "type": "invalid_request_error",
               "param": "model", "request_id": "…"}}

``code`` is this service's own (the tree above); ``type`` is OpenAI's class of it
(:func:`openai_type`); ``param`` names the request field at fault, when one is.

Messages leave through :func:`orchestrator.redaction.redact`, so no key or password
reaches a client or a log line by way of an error.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from orchestrator.redaction import redact
from orchestrator.request_context import current_request_id
from storage import errors as storage_errors

log = logging.getLogger(__name__)


class AppError(Exception):
    """Base of every error the service reports on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, param: str | None = None,
                 headers: dict[str, str] | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        """The request field at fault, when one is."""
        self.headers = headers or {}
        """Response headers the error carries (WWW-Authenticate, Retry-After, …)."""
        self.details = details


class InvalidRequest(AppError):
    status, code = 400, "invalid_request"


class InvalidAudio(InvalidRequest):
    code = "invalid_audio"


class VoiceCannotSpeak(InvalidRequest):
    """The text is in a language the chosen voice cannot pronounce (Korean through an
    English voice comes out as unintelligible sounds, not speech)."""

    code = "voice_language_unsupported"


class Unauthorized(AppError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers.setdefault("WWW-Authenticate", 'Bearer realm="voicechat"')


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    status, code = 404, "not_found"


class Conflict(AppError):
    status, code = 409, "conflict"


class PayloadTooLarge(AppError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(AppError):
    status, code = 415, "unsupported_media_type"


class RateLimited(AppError):
    """Over a per-key limit; ``headers`` say which limit and when to retry."""

    status, code = 429, "rate_limited"


class ServiceDisabled(AppError):
    status, code = 503, "service_disabled"


class ShuttingDown(AppError):
    """This replica is draining (SIGTERM): reconnect, and another one takes over."""

    status, code = 503, "server_shutting_down"


class MemoryUnavailable(AppError):
    """Conversation memory cannot answer (chat goes on without it)."""

    status, code = 503, "memory_unavailable"


class InferenceError(AppError):
    status, code = 502, "inference_error"


class InferenceInvalidInput(InferenceError):
    status, code = 400, "inference_invalid_input"


class InferenceUnavailable(InferenceError):
    status, code = 503, "inference_unavailable"


class ModelNotReady(InferenceUnavailable):
    code = "model_not_ready"


class InferenceTimeout(InferenceError):
    status, code = 504, "inference_timeout"


class ErrorDetail(msgspec.Struct):
    code: str
    message: str
    type: str
    request_id: str | None = None
    param: str | None = None


class ErrorBody(msgspec.Struct):
    error: ErrorDetail


_HTTP_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden",
               404: "not_found", 405: "method_not_allowed", 409: "conflict",
               413: "payload_too_large", 415: "unsupported_media_type",
               429: "rate_limited", 503: "unavailable"}


def openai_type(status: int) -> str:
    """OpenAI's error ``type`` for an HTTP status."""
    return _OPENAI_TYPES.get(status) or ("invalid_request_error" if 400 <= status < 500
                                         else "server_error")


def error_body(status: int, code: str, message: str, param: str | None = None) -> ErrorBody:
    return ErrorBody(ErrorDetail(code=code, message=message, type=openai_type(status),
                                 request_id=current_request_id(), param=param))


def describe(exc: BaseException) -> tuple[int, str, str]:
    """(HTTP status, error code, message) for any exception: the single mapping."""
    status, code, message = _describe(exc)
    return status, code, redact(message)


def _describe(exc: BaseException) -> tuple[int, str, str]:
    if isinstance(exc, AppError):
        return exc.status, exc.code, exc.message
    if isinstance(exc, storage_errors.RecordNotFound):
        return 404, "not_found", str(exc)
    if isinstance(exc, storage_errors.SessionEnded):
        return 409, "session_ended", str(exc)
    if isinstance(exc, storage_errors.StorageFull):
        return 507, "storage_full", ("the database's disk is full: nothing was written; "
                                     "free space where it stores its files (DATA_DIR for "
                                     "SQLite) and retry")
    if isinstance(exc, storage_errors.StorageUnavailable):
        return 503, "storage_unavailable", "storage unavailable, try again shortly"
    if isinstance(exc, storage_errors.StorageError):
        return 500, "storage_error", "storage error"
    if isinstance(exc, RecursionError) and "deserializing" in str(exc):
        # msgspec's depth guard on a body or event like {"a":{"a":… ; nothing was decoded
        return 400, "invalid_request", "JSON nested too deeply"
    if isinstance(exc, ValidationException):
        return 400, "invalid_request", _validation_message(exc)
    if isinstance(exc, HTTPException):
        status = exc.status_code
        return status, _HTTP_CODES.get(status, "http_error"), str(exc.detail)
    return 500, "internal_error", "internal server error"


def _validation_message(exc: ValidationException) -> str:
    extra = exc.extra
    if isinstance(extra, list) and extra:
        parts = []
        for item in extra:
            if isinstance(item, dict):
                key = item.get("key")
                msg = item.get("message", "")
                parts.append(f"{key}: {msg}" if key else str(msg))
        if parts:
            return "; ".join(parts)
    return str(exc.detail)


def exception_to_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar exception handler: every error leaves through here."""
    status, code, message = describe(exc)
    if status >= 500 and not isinstance(exc, AppError | storage_errors.StorageUnavailable):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
    elif status >= 500:
        log.warning("%s: %s", code, message)
    headers = dict(error_headers(exc))
    param = exc.param if isinstance(exc, AppError) else None
    return Response(content=error_body(status, code, message, param), status_code=status,
                    headers=headers, media_type="application/json")


def error_headers(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, AppError):
        return exc.headers
    if isinstance(exc, HTTPException) and exc.headers:
        return dict(exc.headers)
    return {}


# OpenAI's error ``type`` for the statuses that have one of their own.
_OPENAI_TYPES = {401: "authentication_error", 403: "permission_error",
                 404: "invalid_request_error", 429: "rate_limit_error"}


def websocket_error_event(exc: BaseException, event_id: str | None = None) -> dict[str, Any]:
    """The realtime ``error`` event for an exception (OpenAI Realtime shape)."""
    status, code, message = describe(exc)
    error: dict[str, Any] = {"type": openai_type(status), "code": code, "message": message}
    if isinstance(exc, AppError) and exc.param:
        error["param"] = exc.param
    return {"type": "error", "event_id": event_id, "error": error}
