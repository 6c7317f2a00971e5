"""TTS runtime, snapshotted into each version as ``tts_runtime/`` (numpy + onnxruntime only:
it runs inside Triton's python stub with no torch)."""

from . import kokoro, normalize
from .synthesizer import BadRequest, Chunk, Plan, Synthesizer
from .voices import VOICES_FILE, Voice, VoiceConfig, load_catalog

__all__ = ["VOICES_FILE", "BadRequest", "Chunk", "Plan", "Synthesizer", "Voice", "VoiceConfig",
           "kokoro", "load_catalog", "normalize"]
