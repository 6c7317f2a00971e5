"""Whisper inference in numpy + ONNX Runtime, as run inside the Triton ``stt`` model.

No torch and no network: the log-mel front end, the tokenizer (tiktoken with the
assets exported next to the weights) and the decoding loop mirror openai-whisper's
``log_mel_spectrogram``, ``decode`` and ``transcribe`` so that greedy results are the
same tokens. Export copies this package into each version (``stt_runtime/``), so a
version's code and weights always travel together.
"""

from .decoding import WhisperOnnx, WindowDecoder, WindowResult
from .frontend import N_FRAMES, N_SAMPLES, SAMPLE_RATE, log_mel_spectrogram, pad_or_trim
from .tokenizer import WhisperTokenizer
from .transcribe import Transcriber, Transcription, TranscriptionJob

__all__ = ["N_FRAMES", "N_SAMPLES", "SAMPLE_RATE", "Transcriber", "Transcription",
           "TranscriptionJob", "WhisperOnnx", "WhisperTokenizer", "WindowDecoder",
           "WindowResult", "log_mel_spectrogram", "pad_or_trim"]
