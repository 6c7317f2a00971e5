"""Serving profile names and their state file (``SERVING_PROFILE``).

Settings check the name; the models feature reads and writes the file
(:mod:`orchestrator.models.state`). This module sits below both, so settings need not
import the models feature.
"""

from __future__ import annotations

import re

SERVING_FILE = "serving.json"
_PROFILE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def serving_file(profile: str = "") -> str:
    """``serving.json`` (default profile) or ``serving.<profile>.json``."""
    if not profile:
        return SERVING_FILE
    if not _PROFILE_NAME.match(profile):
        raise ValueError(f"serving profile {profile!r}: expected lower-case letters, digits, "
                         "- or _ (e.g. ko)")
    return f"serving.{profile}.json"
