"""Semantic end-of-turn detection: Smart Turn v3.2 (pipecat-ai, BSD-2), in process.

The model reads the Whisper log-mel of the last 8 s of a turn ([1, 80, 800]) and says
how likely the speaker has finished: "What is the capital of France?" scores high, "I'd
like to order ..." low, from the words and the intonation. It is asked once per pause
(after a short silence), not per frame.

Why in process rather than a Triton model (measured in docs/benchmarks/voice.md): one
call costs about 20 ms of one CPU thread, a turn asks once or twice, and the input is a
256 KB feature array. On Triton each call would add a gRPC round trip, the transfer and a
python-backend hop, while sessions' pauses rarely coincide, so there is no batch to win.
Next to the socket it also keeps turn-taking working while Triton restarts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from export.tts.runtime.normalize import HANGUL
from export.tts.runtime.sentences import KOREAN_ENDING
from orchestrator.realtime.audio import loud_end
from orchestrator.realtime.turns.vad import FRAME, packaged_file
from orchestrator.speech.audio_format import MODEL_RATE

RATE = MODEL_RATE
WINDOW_SECONDS = 8
N_FFT, HOP, N_MELS = 400, 160, 80


def default_model_path() -> Path:
    """``smart-turn-v3.2-cpu.onnx`` from the installed pipecat-ai wheel (installed
    ``--no-deps``: pipecat itself is never imported)."""
    return packaged_file("pipecat", "pipecat-ai",
                         "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx",
                         "; semantic_vad needs its Smart Turn model")


def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    freq = np.asarray(freq, dtype=np.float64)
    return np.where(freq >= 1000.0, 15.0 + np.log(np.maximum(freq, 1e-9) / 1000.0)
                    * 27.0 / np.log(6.4), 3.0 * freq / 200.0)


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    return np.where(mels >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (mels - 15.0)),
                    200.0 * mels / 3.0)


@cache
def mel_filters() -> np.ndarray:
    """[80, 201] Slaney-normalised triangular filters, as Whisper's feature extractor."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(RATE / 2), N_MELS + 2))
    fft_freqs = np.linspace(0, RATE // 2, N_FFT // 2 + 1)
    slopes = edges[None, :] - fft_freqs[:, None]
    widths = np.diff(edges)
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(down, up)) * (2.0 / (edges[2:] - edges[:-2]))[None, :]
    return filters.T


_WINDOW = np.hanning(N_FFT + 1)[:-1]  # periodic Hann, as torch.hann_window


def features(audio: np.ndarray) -> np.ndarray:
    """[80, 800] log-mel of the last 8 s of 16 kHz ``audio`` (zero-padded in front), with
    the waveform normalised to zero mean and unit variance first, as the model was
    trained (transformers' ``WhisperFeatureExtractor(chunk_length=8)``)."""
    n = RATE * WINDOW_SECONDS
    x = np.asarray(audio, dtype=np.float32).reshape(-1)[-n:]
    x = np.pad(x, (n - x.size, 0))
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), (N_FFT // 2, N_FFT // 2), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2
    log_spec = np.log10(np.maximum(mel_filters() @ power.T, 1e-10))[:, :-1]
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


TAIL_MS = 200
"""Audio the model reads after the turn's last loud sample (pipecat pairs Smart Turn v3
with a VAD that stops after 200 ms of silence)."""
_LAG_MS = 320  # Silero reports a silence up to a few frames after the voice fell quiet


def end_aligned(audio: np.ndarray, silence_samples: int, tail_ms: int = TAIL_MS) -> np.ndarray:
    """The turn up to ``tail_ms`` after its last loud sample, the silence at its end being
    ``silence_samples`` long as the VAD saw it (zeros pad a tail not heard yet).

    Why: the model's window is aligned to the end of its input, so where the speech ends
    inside the VAD's 32 ms frame shifts every STFT frame of it. The same espeak "Can you
    tell me how to" scored 0.17, 0.81, 0.50 and 0.78 when it arrived 0, 8, 16 and 24 ms
    later; cut at the speech's own end it scores 0.23 each time."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    silence_start = max(0, audio.size - silence_samples)
    if silence_start == 0:
        return audio
    level = max(0.01, 0.1 * float(np.percentile(np.abs(audio[:silence_start]), 99)))
    low = max(0, silence_start - _LAG_MS * RATE // 1000)
    high = min(audio.size, silence_start + FRAME)  # the first silent frame may end a word
    end = low + loud_end(audio[low:high], level)
    end = end if end > low else silence_start
    want = end + tail_ms * RATE // 1000
    if want <= audio.size:
        return audio[:want]
    return np.concatenate([audio, np.zeros(want - audio.size, dtype=np.float32)])


class SmartTurnModel:
    """One ONNX session shared by every connection (``run`` is thread-safe)."""

    def __init__(self, path: str | Path | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self.path = Path(path) if path else default_model_path()
        self.session = onnxruntime.InferenceSession(str(self.path), sess_options=options,
                                                    providers=["CPUExecutionProvider"])

    def completion(self, audio: np.ndarray) -> float:
        """Probability that the speaker finished, for a turn's 16 kHz audio so far."""
        (out,) = self.session.run(None, {"input_features": features(audio)[None]})
        return float(np.asarray(out).reshape(-1)[0])


@cache
def load_model(path: str | None = None) -> SmartTurnModel:
    return SmartTurnModel(path)


@dataclass(frozen=True, slots=True)
class Eagerness:
    """How ``semantic_vad`` turns one eagerness into silences and a decision threshold."""

    check_ms: int
    """Silence after which the turn model is asked (and speculative work starts)."""
    threshold: float
    """Completion probability at or above which the turn ends at the check."""
    max_silence_ms: int
    """Silence that ends a turn the model judged unfinished."""


EAGERNESS = {"high": Eagerness(150, 0.3, 1000), "medium": Eagerness(200, 0.5, 2000),
             "low": Eagerness(300, 0.7, 4000)}
EAGERNESS["auto"] = EAGERNESS["medium"]


# Words an English sentence does not end on: a transcript ending in one was cut short,
# whatever punctuation the recogniser added ("Can you tell me how to?").
_UNFINISHED_ENDINGS = frozenset({
    "a", "an", "the", "to", "of", "in", "on", "at", "for", "from", "with", "by", "about",
    "into", "over", "under", "as", "than", "and", "or", "but", "nor", "if", "because",
    "which", "whose", "whether", "i", "he", "she", "we", "they", "my", "your", "his", "our",
    "their", "its", "is", "are", "was", "were", "be", "been", "am", "have", "has", "had",
    "can", "could", "would", "should", "will", "shall", "may", "might", "must", "um", "uh",
    "er", "maybe", "very"})


WORDS_DECIDE = frozenset({"ko"})
"""Languages whose turns end on their words, not on Smart Turn's score. Korean: the model
lists it, but on Kokoro-spoken phrases (docs/korean.md) it scored 4 of 6 unfinished ones
("내일 오후에 회의가" 0.98, "음 그게 뭐냐면" 0.65) at or above medium's 0.5, and
"고마워요." at 0.21; Korean grammar says it plainly instead: a sentence ends on a final
ending (요, ㅂ니다, 죠, 다, ㄹ까), an unfinished phrase on a particle or a connective
(회의가, 좋아하는데, 오면)."""
_KOREAN_FINAL = re.compile(rf"(?:{KOREAN_ENDING})$")


def words_decide(language: str | None) -> bool:
    """Whether a turn in ``language`` ends on its transcript (see WORDS_DECIDE)."""
    return (language or "").split("-")[0].split("_")[0].lower() in WORDS_DECIDE


def transcript_finished(text: str, language: str | None) -> bool:
    """A second opinion from the words: the transcript ends a sentence. English: on ``?``,
    ``.`` or ``!`` after a word a sentence can end on (Smart Turn hears intonation; a
    flatly read "Why is the sky blue?" scores low though its words are complete).
    Korean words (whatever language the recogniser named): the last word ends in a final
    ending, whatever the punctuation (Whisper puts a full stop after unfinished Korean
    too)."""
    if HANGUL.search(text):
        last = text.strip().rstrip("?.!\"'… ").split()[-1:] or [""]
        return bool(_KOREAN_FINAL.search(last[0]))
    if language not in (None, "en") and not (language or "").startswith("en"):
        return False
    words = text.strip()
    if not words or words[-1] not in "?.!":
        return False
    last = words.rstrip("?.!\"' ").split()[-1:] or [""]
    return last[0].lower().strip(",;:") not in _UNFINISHED_ENDINGS
