"""Triton python-backend model ``stt``: Whisper on ONNX Runtime (snapshotted as model.py).

Each version directory holds this file, ``stt_runtime/`` (front end, tokenizer,
decoding, transcribe loop), the ONNX graphs and the tokenizer/mel assets, so a version
is self-contained. Tensor names come from ``export.specs.stt``; limits and thresholds
from the config's ``parameters``.

``draft_tokens`` is a hint this architecture does not use (its result never depends on it,
so it is accepted and left aside).

One ``execute`` call receives the requests the dynamic batcher grouped: their first
encoder windows (and language-detection inputs) run as one encoder batch, then each
request decodes on its own (greedy decoding is sequential per request).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This version's own copy of the export package (export/snapshot.py) comes first, so the
# version runs the code it was exported with, whatever the installed package is now.
sys.path.insert(0, str(Path(__file__).resolve().with_name("code")))

import json

import numpy as np
import triton_python_backend_utils as pb_utils

from export.providers import onnx_providers
from export.specs.stt import (
    DETECTED_LANGUAGE,
    DURATION,
    SEGMENTS,
    SPEC,
    TEXT,
)
from export.stt.requests import BadRequest, read_request
from export.stt.vad import speech_gate


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = SPEC.read_parameters(config)  # typed, defaults from the spec
        version_dir = Path(args["model_repository"]) / args["model_version"]
        sys.path.insert(0, str(version_dir))
        from stt_runtime import Transcriber, WhisperOnnx, WhisperTokenizer
        from stt_runtime.frontend import load_mel_filters
        from stt_runtime.transcribe import decoding_options

        self.max_audio_seconds = float(params["max_audio_seconds"])
        options = decoding_options(version_dir, float(params["min_window_seconds"]))
        options["speech_gate"] = speech_gate(version_dir) if options.pop("silence_gate") \
            else None
        # KIND_GPU instances (the GPU profile) run on CUDA when onnxruntime-gpu is present.
        model = WhisperOnnx(version_dir, intra_op_threads=int(params["intra_op_threads"]),
                            decoder_threads=int(params["decoder_threads"]),
                            providers=onnx_providers(args))
        tokenizer = WhisperTokenizer(version_dir)
        filters = load_mel_filters(str(version_dir / "mel_filters.npz"), model.dims["n_mels"])
        self.transcriber = Transcriber(
            model, tokenizer, filters,
            no_speech_threshold=float(params["no_speech_threshold"]),
            logprob_threshold=float(params["logprob_threshold"]),
            condition_on_previous_text=bool(params["condition_on_previous_text"]),
            **options)
        self.max_batch = max(1, int(config.get("max_batch_size", 1)))

    def _prepare(self, request):  # type: ignore[no-untyped-def]
        inputs = read_request(pb_utils, request, self.max_audio_seconds)
        try:
            return self.transcriber.prepare(
                inputs.audio, language=inputs.language, task=inputs.task,
                prompt=inputs.prompt, temperature=inputs.temperature,
                word_timestamps=inputs.word_timestamps)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc

    def execute(self, requests):  # type: ignore[no-untyped-def]
        responses: list = [None] * len(requests)
        jobs = {}
        for i, request in enumerate(requests):
            try:
                jobs[i] = self._prepare(request)
            except BadRequest as exc:
                responses[i] = pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    str(exc), pb_utils.TritonError.INVALID_ARG))
        # First windows of all requests through the encoder together (one batch per
        # window length: sized windows differ), each output back in its job's place.
        by_length: dict[int, list[tuple[int, int, np.ndarray]]] = {}
        initial: dict[int, list] = {}
        for i, job in jobs.items():
            mels = job.initial_mels()
            initial[i] = [None] * len(mels)
            for place, mel in enumerate(mels):
                by_length.setdefault(mel.shape[-1], []).append((i, place, mel))
        for group in by_length.values():
            for start in range(0, len(group), self.max_batch):
                chunk = group[start:start + self.max_batch]
                encoded = self.transcriber.encode([mel for _, _, mel in chunk])
                for (owner, place, _), features in zip(chunk, encoded, strict=True):
                    initial[owner][place] = features
        for i, job in jobs.items():
            try:
                result = self.transcriber.run(job, initial[i])
            except Exception as exc:
                responses[i] = pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    f"transcription failed: {exc}", pb_utils.TritonError.INTERNAL))
                continue
            segments = [{key: s[key] for key in ("id", "seek", "start", "end", "text",
                                                 "tokens", "temperature", "avg_logprob",
                                                 "compression_ratio", "no_speech_prob",
                                                 "words") if key in s}
                        for s in result.segments]
            responses[i] = pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor(TEXT.name, np.array([[result.text.encode()]], dtype=object)),
                pb_utils.Tensor(DETECTED_LANGUAGE.name,
                                np.array([[result.language.encode()]], dtype=object)),
                pb_utils.Tensor(SEGMENTS.name,
                                np.array([[json.dumps(segments).encode()]], dtype=object)),
                pb_utils.Tensor(DURATION.name, np.array([[result.duration]], np.float32)),
            ])
        return responses

    def finalize(self) -> None:
        self.transcriber = None
