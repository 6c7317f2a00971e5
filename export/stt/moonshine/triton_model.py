"""Triton python-backend model ``stt`` for Moonshine versions (snapshotted as model.py).

The same tensors as the Whisper versions (``export.specs.stt``), so clients, promotion and
rollback do not care which architecture a version runs. Moonshine transcribes English
only and takes no prompt and no translation task: such requests are refused (INVALID_ARG)
rather than silently answered differently.

The dynamic batcher may hand several requests to one ``execute``; each is transcribed in
turn (the encoder takes any length, so there is no padded window to share). Draft tokens
(a partial transcript's) are verified in one decoder call (``runtime.decode``).
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
    DRAFT_TOKENS,
    DURATION,
    ENGLISH,
    SAMPLE_RATE,
    SEGMENTS,
    SPEC,
    TEXT,
)
from export.stt.moonshine.runtime import MoonshineOnnx, SpeechLost, segments
from export.stt.requests import BadRequest, read_request


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        params = SPEC.read_parameters(json.loads(args["model_config"]))
        version_dir = Path(args["model_repository"]) / args["model_version"]
        self.max_audio_seconds = float(params["max_audio_seconds"])
        self.model = MoonshineOnnx(version_dir, intra_op_threads=int(params["intra_op_threads"]),
                                   decoder_threads=int(params["decoder_threads"]),
                                   providers=onnx_providers(args))

    def _prepare(self, request) -> tuple[np.ndarray, float, list[int]]:  # type: ignore[no-untyped-def]
        inputs = read_request(pb_utils, request, self.max_audio_seconds)
        if inputs.language is not None and inputs.language.lower() not in ENGLISH:
            raise BadRequest(f"this stt version (Moonshine, English) cannot transcribe "
                             f"language {inputs.language!r}; serve a Whisper version for it")
        if inputs.task != "transcribe":
            raise BadRequest(f"this stt version (Moonshine) cannot {inputs.task}: only "
                             "transcribe")
        if inputs.prompt:
            raise BadRequest("this stt version (Moonshine) takes no prompt")
        if inputs.word_timestamps:
            raise BadRequest("this stt version (Moonshine) gives no word timestamps: ask a "
                             "Whisper version")
        draft = pb_utils.get_input_tensor_by_name(request, DRAFT_TOKENS.name)
        tokens = [] if draft is None else [int(t) for t in draft.as_numpy().reshape(-1)]
        vocabulary = self.model.tokenizer.get_vocab_size()
        if any(not 0 <= t < vocabulary for t in tokens):
            raise BadRequest(f"{DRAFT_TOKENS.name} holds ids outside the vocabulary "
                             f"(0..{vocabulary - 1})")
        return inputs.audio, inputs.temperature, tokens

    def execute(self, requests):  # type: ignore[no-untyped-def]
        responses = []
        for request in requests:
            try:
                audio, temperature, draft = self._prepare(request)
                windows = self.model.transcribe(audio, temperature=temperature, draft=draft)
            except BadRequest as exc:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    str(exc), pb_utils.TritonError.INVALID_ARG)))
                continue
            except SpeechLost as exc:  # an error, never a transcript without that speech
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    f"speech lost: {exc}", pb_utils.TritonError.INTERNAL)))
                continue
            except Exception as exc:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    f"transcription failed: {exc}", pb_utils.TritonError.INTERNAL)))
                continue
            text = " ".join(w.text for w in windows if w.text)
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor(TEXT.name, np.array([[text.encode()]], dtype=object)),
                pb_utils.Tensor(DETECTED_LANGUAGE.name, np.array([[b"en"]], dtype=object)),
                pb_utils.Tensor(SEGMENTS.name, np.array(
                    [[json.dumps(segments(windows)).encode()]], dtype=object)),
                pb_utils.Tensor(DURATION.name,
                                np.array([[audio.size / SAMPLE_RATE]], np.float32)),
            ]))
        return responses

    def finalize(self) -> None:
        self.model = None
