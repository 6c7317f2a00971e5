"""The ``stt`` role: speech-to-text (python backend over ONNX Runtime).

Two architectures serve it behind these tensors: Whisper (multilingual, language
detection, prompts, translation) and Moonshine (English; its encoder takes the audio at
its own length). The Whisper-only parameters (no-speech and log-prob thresholds,
conditioning on previous text) do not apply to Moonshine versions.

One request is one utterance or recording: 16 kHz mono float audio of any length (audio
over 30 s is transcribed window by window as openai-whisper does). Dynamic batching
groups concurrent requests into one ``execute`` call, where the model runs the encoder
on the first window of every request as one batch. Triton only groups requests whose
tensors have the same shape, so equal-length clips (e.g. the fixed-size windows the
realtime pipeline sends) batch best.
"""

from __future__ import annotations

from export.specs.base import DynamicBatching, ModelSpec, Parameter, Tensor, tone

SAMPLE_RATE = 16_000
ENGLISH = ("en", "english")
"""The ``language`` values that name English (code or Whisper language name)."""

AUDIO = Tensor("audio", "FP32", (-1,), doc="16 kHz mono samples in [-1, 1]", example=tone)
LANGUAGE = Tensor("language", "BYTES", (1,), optional=True,
                  doc="ISO 639-1 code (e.g. en) or Whisper language name; absent: detected",
                  example="en")
TASK = Tensor("task", "BYTES", (1,), optional=True, doc="transcribe (default) or translate")
PROMPT = Tensor("prompt", "BYTES", (1,), optional=True,
                doc="initial prompt: earlier text or spellings that condition the first window")
TEMPERATURE = Tensor("temperature", "FP32", (1,), optional=True,
                     doc="0 (default): greedy decoding; > 0: sampling at that temperature")

WORD_TIMESTAMPS = Tensor("word_timestamps", "BOOL", (1,), optional=True,
                        doc="true: each segment also lists its words with start and end "
                            "(Whisper's alignment heads; versions exported since "
                            "2026-12-02; Moonshine refuses it)")

DRAFT_TOKENS = Tensor("draft_tokens", "INT32", (-1,), optional=True,
                     doc="token ids of an earlier transcript of the start of this audio by "
                         "the same version (a partial): a version may check them all in one "
                         "decoder pass instead of one pass per token; the result is exactly "
                         "what it is without them")

TEXT = Tensor("text", "BYTES", (1,), doc="the transcript")
DETECTED_LANGUAGE = Tensor("detected_language", "BYTES", (1,),
                           doc="language code used for decoding (given or detected)")
SEGMENTS = Tensor("segments", "BYTES", (1,),
                  doc="JSON list of {id, seek, start, end, text, tokens, avg_logprob, "
                      "compression_ratio, no_speech_prob} (and words: [{word, start, end, "
                      "probability}] when word_timestamps is true)")
DURATION = Tensor("duration", "FP32", (1,), doc="audio duration in seconds")

SPEC = ModelSpec(
    name="stt",
    description="Speech-to-text (Whisper or Moonshine): 16 kHz mono audio -> text, language, "
                "segments",
    inputs=(AUDIO, LANGUAGE, TASK, PROMPT, TEMPERATURE, DRAFT_TOKENS, WORD_TIMESTAMPS),
    outputs=(TEXT, DETECTED_LANGUAGE, SEGMENTS, DURATION),
    max_batch_size=8,
    dynamic_batching=DynamicBatching(max_queue_delay_us=5000),
    # The two newest versions: with an English-only Moonshine version newest, requests in
    # other languages are routed to the Whisper version beside it (orchestrator.speech.stt).
    num_served_versions=2,
    parameters=(
        # openai-whisper transcribe() defaults: a window whose no-speech probability is
        # above the threshold AND whose average log-probability is below the log-prob
        # threshold is silence and yields no text.
        Parameter("no_speech_threshold", 0.6, "no-speech probability above which a quiet "
                  "window is dropped"),
        Parameter("logprob_threshold", -1.0, "average log-probability below which a "
                  "no-speech window is dropped"),
        Parameter("condition_on_previous_text", True, "prompt each window with the "
                  "previous window's text"),
        Parameter("max_audio_seconds", 1800.0, "longest audio accepted (inf: no limit)"),
        Parameter("min_window_seconds", 0.0, "Whisper: shortest encoder window. 0: the "
                  "version's own (its decoding.json, what its export scored it with; 30 s "
                  "for versions exported before 2026-12-05); 30 pads every window to 30 s "
                  "as openai-whisper does (its exact tokens); lower sizes windows to the "
                  "audio plus a second, at least this long (faster; see "
                  "docs/benchmarks/stt.md for its error rates)"),
        Parameter("intra_op_threads", 0, "ONNX Runtime threads per session (0: all cores)"),
        Parameter("decoder_threads", 1, "ONNX Runtime threads of the decoder, which runs one "
                  "token (or one draft) per call: its steps are too small to gain from more "
                  "cores, and a second thread stalls on any busy core (measured on a 2-core "
                  "CPU: a live turn's final Moonshine pass 58-67 ms on one decoder thread, "
                  "96-117 ms on two; 30 s uploads 22 % slower on one). 0: intra_op_threads"),
    ),
)
