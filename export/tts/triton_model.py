"""Triton python-backend model ``tts`` (decoupled): text -> one audio chunk per sentence.

Snapshotted as ``<version>/model.py`` by ``python -m export tts``; the version's
``tts_runtime/`` package does the work (normalise, split, phonemise, run the voice) and
``voices.json`` lists the voices, all loaded at start-up.

Each request gets its own thread with its response sender, so ``execute`` returns at
once and requests overlap (ONNX Runtime releases the GIL); at most
``max_concurrent_streams`` synthesise at once. Each chunk is sent as soon as it is
synthesised: a sentence, or a piece of one for voices cut before their decoder (the
first piece carries the sentence's text, the others an empty ``sentence``); the last
response has ``final=True`` and empty audio. Cancellation is checked between chunks.
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
from export.specs import tts as spec
from export.streaming import StreamWorkers


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = spec.SPEC.read_parameters(config)  # typed, defaults from the spec
        version_dir = Path(args["model_repository"]) / args["model_version"]
        sys.path.insert(0, str(version_dir))
        from tts_runtime import Synthesizer
        from tts_runtime.engines import configured, resolve

        self.logger = pb_utils.Logger
        providers = onnx_providers(args)  # CUDA for KIND_GPU instances (GPU profile)
        engine = resolve(configured(str(params["kokoro_engine"])),
                         gpu=providers[0] != "CPUExecutionProvider")
        self.synthesizer = Synthesizer(
            version_dir, intra_op_threads=int(params["intra_op_threads"]),
            max_text_chars=int(params["max_text_chars"]), providers=providers,
            kokoro_engine=engine)
        self.streams = StreamWorkers(pb_utils, "tts", int(params["max_concurrent_streams"]))
        self.logger.log_info(f"tts: voices {', '.join(sorted(self.synthesizer.voices))} "
                             f"(default {self.synthesizer.default}); Kokoro decoders on "
                             f"{self.synthesizer.kokoro_engine}")

    def execute(self, requests: list) -> None:
        self.streams.dispatch(requests, self._parse, self._synthesize)

    def _parse(self, request):  # type: ignore[no-untyped-def]
        def value(tensor, default):  # type: ignore[no-untyped-def]
            return self.streams.scalar(request, tensor, default)

        noise_scale = value(spec.NOISE_SCALE, None)
        noise_w = value(spec.NOISE_W, None)
        return self.synthesizer.plan(
            str(value(spec.TEXT, "")), voice=str(value(spec.VOICE, "")),
            language=str(value(spec.LANGUAGE, "")), speed=float(value(spec.SPEED, 1.0)),
            noise_scale=None if noise_scale is None else float(noise_scale),
            noise_w=None if noise_w is None else float(noise_w))

    def _synthesize(self, plan, sender, request_id: str) -> None:  # type: ignore[no-untyped-def]
        sample_rate = plan.voice.config.sample_rate
        for sent, chunk in enumerate(self.synthesizer.chunks(plan)):
            if chunk.dropped:
                self.logger.log_warn(f"tts: request {request_id!r}: voice "
                                     f"{plan.voice.config.name} cannot say "
                                     f"{''.join(sorted(set(chunk.dropped)))!r}; dropped")
            if self.streams.cancelled(sender):
                self.logger.log_info(f"tts: request {request_id!r} cancelled after {sent} "
                                     "chunks")
                self.streams.end(sender)
                return
            sender.send(_response(chunk.audio, sample_rate, chunk.sentence, final=False))
        sender.send(_response(np.zeros(0, np.float32), sample_rate, "", final=True),
                    flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    def finalize(self) -> None:
        self.streams.finalize()


def _response(audio: np.ndarray, sample_rate: int, sentence: str, final: bool):  # type: ignore[no-untyped-def]
    return pb_utils.InferenceResponse(output_tensors=[
        pb_utils.Tensor(spec.AUDIO.name, np.ascontiguousarray(audio, dtype=np.float32)),
        pb_utils.Tensor(spec.SAMPLE_RATE.name, np.array([sample_rate], np.int32)),
        pb_utils.Tensor(spec.SENTENCE.name, np.array([sentence.encode("utf-8")], np.object_)),
        pb_utils.Tensor(spec.FINAL.name, np.array([final], np.bool_)),
    ])
