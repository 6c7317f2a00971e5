"""Shared field constraints for request bodies (hostile strings stop here)."""

from __future__ import annotations

import re
from typing import Annotated

import msgspec
from litestar.params import Parameter

# No C0 control characters except tab/newline/carriage return, no DEL.
_NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"

UserId = Annotated[str, msgspec.Meta(min_length=1, max_length=64,
                                     pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:-]*$",
                                     description="1-64 characters: letters, digits, . _ @ : -")]
_USER_ID = re.compile(UserId.__metadata__[0].pattern)
UserIdPath = Annotated[str, Parameter(min_length=1, max_length=64,
                                      pattern=UserId.__metadata__[0].pattern,
                                      description=UserId.__metadata__[0].description)]
"""A user id in a URL path (the same rule, as a Litestar parameter)."""


def is_user_id(value: str) -> bool:
    """Whether ``value`` meets :data:`UserId` (for ids that arrive outside a body)."""
    return len(value) <= UserId.__metadata__[0].max_length and bool(_USER_ID.fullmatch(value))


Language = Annotated[str, msgspec.Meta(min_length=2, max_length=16,
                                       pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$",
                                       description="ISO 639 code, e.g. en, ko, pt-BR")]
VoiceName = Annotated[str, msgspec.Meta(min_length=1, max_length=128,
                                        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
Instructions = Annotated[str, msgspec.Meta(max_length=8000, pattern=_NO_CONTROL,
                                           description="System prompt; at most 8000 characters")]
PlainText = Annotated[str, msgspec.Meta(pattern=_NO_CONTROL)]
