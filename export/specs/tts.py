"""The ``tts`` model: text + voice + speed -> streamed float audio, sentence by sentence.

Decoupled: a request yields a response per sentence as soon as it is synthesised, or per
piece of one for voices decoded in pieces (``audio`` float32 in [-1, 1] at
``sample_rate``, ``sentence`` the sentence a chunk begins, empty on its later pieces),
and a last response with ``final=True`` and empty audio. Several voices live in one repository
version (``voices.json`` next to ``model.py``); ``voice`` picks one by name (empty: the
version's default voice), optionally ``name#speaker`` for a multi-speaker voice.
"""

from __future__ import annotations

from export.specs.base import EXAMPLE_TEXT, ModelSpec, Parameter, Tensor

TEXT = Tensor("text", "BYTES", (1,), doc="UTF-8 text; normalised and split into sentences",
              example=EXAMPLE_TEXT)
VOICE = Tensor("voice", "BYTES", (1,), optional=True,
               doc='voice name, "name#speaker" for multi-speaker voices; "" = default')
LANGUAGE = Tensor("language", "BYTES", (1,), optional=True,
                  doc='text normalisation language (en, ko); "" = the voice\'s language')
SPEED = Tensor("speed", "FP32", (1,), optional=True, doc="1.0 normal; 0.25..4.0")
NOISE_SCALE = Tensor("noise_scale", "FP32", (1,), optional=True,
                     doc="VITS noise scale; default from the voice config (Kokoro "
                         "voices refuse it)")
NOISE_W = Tensor("noise_w", "FP32", (1,), optional=True,
                 doc="VITS duration noise; default from the voice config (Kokoro voices "
                     "refuse it)")

AUDIO = Tensor("audio", "FP32", (-1,), doc="mono samples of one sentence or a piece of one "
                                            "(empty on final)")
SAMPLE_RATE = Tensor("sample_rate", "INT32", (1,))
SENTENCE = Tensor("sentence", "BYTES", (1,), doc="the sentence this chunk begins (empty on "
                                                  "its later pieces)")
FINAL = Tensor("final", "BOOL", (1,), doc="true on the last response of a request")

MIN_SPEED, MAX_SPEED = 0.25, 4.0

SPEC = ModelSpec(
    name="tts",
    description="VITS / Piper / Kokoro voices (ONNX), espeak-ng or Korean phonemes, "
                "streamed sentence by sentence (Piper / VITS in pieces)",
    inputs=(TEXT, VOICE, LANGUAGE, SPEED, NOISE_SCALE, NOISE_W),
    outputs=(AUDIO, SAMPLE_RATE, SENTENCE, FINAL),
    max_batch_size=0,
    decoupled=True,
    parameters=(
        Parameter("max_text_chars", 4096, "longest text accepted"),
        Parameter("max_concurrent_streams", 4, "syntheses at once; later ones wait"),
        Parameter("intra_op_threads", 0, "ONNX Runtime threads per voice (0: all cores)"),
        Parameter("kokoro_engine", "auto", "what runs a Kokoro voice's decoder on a CPU: "
                  "onnxruntime, openvino (bfloat16 on CPUs with AMX) or auto (openvino "
                  "where the CPU has AMX, export/tts/runtime/engines.py); GPU instances "
                  "always run ONNX Runtime"),
    ),
)
