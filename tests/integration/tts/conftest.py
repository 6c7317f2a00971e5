"""TTS fixtures: the real Piper voice en_US-joe-medium plus a tiny random multi-speaker
Korean VITS voice, exported together at test time as ``tts`` version 1 and served by the
session's Triton."""

from __future__ import annotations

from tests.support.tts_fixtures import KOREAN_VOICE, VERSION

__all__ = ["KOREAN_VOICE", "VERSION"]
