"""Structured logging: one JSON object per line, carrying the request id.

Every line passes through :func:`orchestrator.redaction.redact` (keys, bearer tokens,
URL passwords), whichever logger wrote it.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from orchestrator.redaction import redact
from orchestrator.request_context import current_request_id

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = redact(super().format(record))
        request_id = current_request_id()
        return f"{line} [request_id={request_id}]" if request_id else line


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners and process managers
    swap it; a handler holding the old, closed stream would fail on every record)."""

    @property  # type: ignore[override]
    def stream(self):  # type: ignore[no-untyped-def]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # type: ignore[no-untyped-def]
        pass


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route the root logger (and uvicorn's) to stderr in the chosen format."""
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))
    # WebRTC's ICE and RTP libraries log every candidate check at INFO: a dozen lines a
    # call. The call's own start and end are logged by the transport.
    for name in ("aioice", "aiortc"):
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))
    # Access lines duplicate our own request log; keep them at DEBUG only.
    logging.getLogger("uvicorn.access").setLevel(max(logging.getLogger().level, logging.WARNING))
