"""Typed settings from environment variables: the field that names its variable, how a
value is parsed and bounded, ``KEY=value`` env files, and the error that names the
variable. :mod:`orchestrator.settings` declares the fields."""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit

from orchestrator.redaction import mask_url

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """A configuration variable holds a value the service cannot use."""

    def __init__(self, variable: str, value: str, reason: str) -> None:
        super().__init__(f"invalid {variable}={value!r}: {reason}")
        self.variable = variable


def env_field(name: str, doc: str, default: Any = None, **kwargs: Any) -> Any:
    """A dataclass field read from environment variable ``name``."""
    metadata = {"env": name, "doc": doc, **kwargs}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def check_choice(variable: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SettingsError(variable, value, "use " + ", ".join(allowed[:-1]) +
                            f" or {allowed[-1]}")


def check_redis_url(url: str) -> None:
    """A clear start-up error rather than redis-py's at the first request."""
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise SettingsError("REDIS_URL", mask_url(url), "use redis://host:6379/0, "
                            "rediss:// (TLS) or unix:///path/to/redis.sock")
    try:
        _ = parts.port  # urllib checks it only when asked
    except ValueError:
        raise SettingsError("REDIS_URL", mask_url(url), "the port is not a number") from None
    if parts.scheme == "unix":
        if not parts.path:
            raise SettingsError("REDIS_URL", mask_url(url), "name the socket: unix:///path")
        return
    if not parts.hostname:
        raise SettingsError("REDIS_URL", mask_url(url), "name the host: redis://host:6379/0")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise SettingsError("REDIS_URL", mask_url(url), f"the database {db!r} is not a number")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost (what only this machine can reach)."""
    if host.lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_value(name: str, raw: str, kind: Any, meta: Mapping[str, Any]) -> Any:
    kinds = set(getattr(kind, "__args__", (kind,))) - {type(None)}
    optional = type(None) in getattr(kind, "__args__", ())
    if optional and raw == "":
        return None
    if kinds == {bool}:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise SettingsError(name, raw, "expected true or false")
    if kinds == {int} or kinds == {float}:
        target = int if kinds == {int} else float
        try:
            number = target(raw)
        except ValueError:
            raise SettingsError(name, raw, f"expected {target.__name__}") from None
        if not math.isfinite(number):
            raise SettingsError(name, raw, "must be a finite number")
        if "minimum" in meta and number < meta["minimum"]:
            raise SettingsError(name, raw, f"must be at least {meta['minimum']}")
        if meta.get("positive") and not number > 0:
            raise SettingsError(name, raw, "must be greater than 0")
        if "maximum" in meta and number > meta["maximum"]:
            raise SettingsError(name, raw, f"must be at most {meta['maximum']}")
        return number
    if getattr(kind, "__origin__", None) is list:
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def load_env_file(path: str | os.PathLike[str]) -> None:
    """Load ``KEY=value`` lines (the original env.local format) into os.environ.

    Variables already set in the environment win, as with docker's ``env_file``.
    """
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):]
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise SettingsError(f"{path}:{number}", line, "expected KEY=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        os.environ.setdefault(key.strip(), value)


def read_fields(cls: type, environ: Mapping[str, str]) -> dict[str, Any]:
    """The fields of dataclass ``cls`` whose variable ``environ`` sets, parsed."""
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        name = f.metadata["env"]
        raw = environ.get(name)
        if raw is not None:
            values[f.name] = parse_value(name, raw.strip(), hints[f.name], f.metadata)
    return values


def describe_fields(settings: Any) -> list[tuple[str, str, str]]:
    """(variable, current value, documentation) of each field; secrets masked."""
    rows = []
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if f.metadata.get("secret") and value:
            shown = "***"
        elif isinstance(value, str) and "://" in value:
            shown = repr(mask_url(value))  # DATABASE_URL, MILVUS_URI with a password
        else:
            shown = repr(value)
        rows.append((f.metadata["env"], shown, f.metadata["doc"]))
    return rows
