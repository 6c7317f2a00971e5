"""Moonshine as a second architecture of ``stt``: exported from the bundled wheels with
parity against useful-moonshine-onnx, served by a real Triton behind Whisper's tensors,
refusing what it cannot do, and promoted / rolled back against a Whisper version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from export.repository import ModelRepository
from export.stt import quality, testspeech
from export.stt.moonshine.export import reference_audio
from export.stt.scoring import wer
from orchestrator.errors import InferenceInvalidInput
from orchestrator.inference.client import TritonClient
from orchestrator.models.service import ModelAdmin, VersionRefused
from orchestrator.speech.stt import SpeechToText
from tests.support import triton as triton_support
from tests.support.stt import espeak, export_version, read_wav, tiny_whisper_checkpoint

pytestmark = [pytest.mark.triton, pytest.mark.realweights, pytest.mark.asyncio]

BECKETT = "Ever tried ever failed, no matter try again. Fail again, fail better."
"""The sample's two stretches of speech, between its 1 s pauses, decoded one by one (the
whole clip at once gave the same words: "… try again fail again fail better.")."""


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> ModelRepository:
    root = tmp_path_factory.mktemp("moonshine-repo")
    whisper = tiny_whisper_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny.pt")
    assert export_version(str(whisper), root) == 1
    assert export_version("moonshine-base", root) == 2
    return ModelRepository(root)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, repository: ModelRepository):  # type: ignore[no-untyped-def]
    triton = triton_support.start_private(repository.root, tmp_path_factory.mktemp("t"))
    yield triton
    triton.stop()


@pytest.fixture(scope="module")
async def stt(server):  # type: ignore[no-untyped-def]
    from export.specs.stt import SPEC

    client = TritonClient(server.grpc_url, timeout_s=120)
    await client.raw.load_model("stt", config=json.dumps(SPEC.config_json(versions=[1, 2])))
    assert await client.model_ready("stt", "2", timeout_s=120)
    yield client
    await client.close()


def test_the_decoders_run_on_their_own_thread_count_and_decode_the_same(
        repository: ModelRepository) -> None:
    """``decoder_threads``: the decoder's one-token calls on one thread (faster than two on
    a busy 2-core CPU, docs/benchmarks/stt.md), the encoder on ``intra_op_threads``; the
    tokens are the same whatever the threads."""
    import sys

    from export.stt.moonshine.runtime import MoonshineOnnx

    (_, beckett), = reference_audio()
    moonshine = repository.model_dir("stt") / "2"
    one = MoonshineOnnx(moonshine, intra_op_threads=2, decoder_threads=1)
    both = MoonshineOnnx(moonshine, intra_op_threads=2)
    assert one.decoder.get_session_options().intra_op_num_threads == 1
    assert one.encoder.get_session_options().intra_op_num_threads == 2
    assert both.decoder.get_session_options().intra_op_num_threads == 2
    assert [w.tokens for w in one.transcribe(beckett)] == \
        [w.tokens for w in both.transcribe(beckett)]
    whisper = repository.model_dir("stt") / "1"
    sys.path.insert(0, str(whisper))
    try:
        from stt_runtime import WhisperOnnx
    finally:
        sys.path.remove(str(whisper))
    model = WhisperOnnx(whisper, intra_op_threads=2, decoder_threads=1)
    assert model.decoder.get_session_options().intra_op_num_threads == 1
    assert model.encoder.get_session_options().intra_op_num_threads == 2


def test_export_proves_every_token_equal_to_the_reference(repository: ModelRepository
                                                         ) -> None:
    manifest = repository.manifest("stt", 2)
    assert manifest.extra["architecture"] == "moonshine" and manifest.parity_passed
    figures = {p.name: p.value for p in manifest.parity}
    assert set(figures) == {"encoder_beckett", "greedy_tokens"}
    assert figures["greedy_tokens"] == 0 and figures["encoder_beckett"] <= 1e-4
    # The int8 .ort graphs become ONNX with their weights dequantized once.
    assert {"model.py", "encoder_model.onnx", "decoder_model_merged.onnx", "tokenizer.json",
            "code/export/stt/moonshine/runtime.py"} <= set(manifest.files)
    assert manifest.dimensions["decoder_layers"] == 8


async def test_served_moonshine_transcribes_english(stt: TritonClient, tmp_path: Path) -> None:
    service = SpeechToText(stt)
    (_, beckett), = reference_audio()
    result = await service.transcribe(beckett, version="2")
    assert (result.text, result.language) == (BECKETT, "en")
    spoken = read_wav(espeak("The quick brown fox jumps over the lazy dog", tmp_path))
    result = await service.transcribe(spoken, language="en", version="2")
    # greedy and deterministic: what this model hears in espeak-ng speech
    assert result.text.lower().rstrip(".") == "the quick brown fox jumped over the lazy dog"
    assert result.segments[0].end == pytest.approx(spoken.size / 16000, abs=0.01)


async def test_a_partial_transcript_as_draft_changes_nothing_but_the_time(stt: TritonClient
                                                                         ) -> None:
    service = SpeechToText(stt)
    (_, beckett), = reference_audio()
    partial = await service.transcribe(beckett[:16000 * 6], version="2")
    draft = list(partial.segments[0].tokens)
    assert partial.text != BECKETT and draft
    for tokens in (draft, draft[:3], [7, 8, 9, 10], draft * 3):
        result = await service.transcribe(beckett, version="2", draft=tokens)
        assert result.text == BECKETT
    with pytest.raises(InferenceInvalidInput, match="outside the vocabulary"):
        await service.transcribe(beckett, version="2", draft=[10**6])


async def test_long_audio_is_cut_at_its_pauses(stt: TritonClient) -> None:
    (_, beckett), = reference_audio()
    gap = np.zeros(8000, np.float32)
    long = np.concatenate([beckett, gap, beckett, gap, beckett, gap, beckett])  # 42 s
    result = await SpeechToText(stt).transcribe(long, version="2")
    # each sample holds a 1 s pause and ends with 1 s of silence: two stretches of speech
    assert len(result.segments) == 8
    assert all(s.end - s.start < 7 for s in result.segments)  # a sample is 10 s
    assert result.text.lower().count("fail better") == 4


async def test_long_audio_with_pauses_comes_back_whole(stt: TritonClient) -> None:
    """Recordings of 3-6 sentences with 0.5-3 s silences (8-30 s): before the fix, four of
    the first six came back as empty transcripts."""
    language = quality.english()
    clips = testspeech.long_clips(language.sentences, language.speaker)
    service = SpeechToText(stt)
    texts = [(await service.transcribe(c.audio, language="en", version="2")).text
             for c in clips]
    assert all(texts), texts
    assert wer([c.text for c in clips], texts) <= 0.15, list(zip(texts, clips, strict=True))


def test_export_scores_long_form_beside_short_form(repository: ModelRepository) -> None:
    figures = repository.manifest("stt", 2).extra["quality"]["en"]
    assert figures["long_clips"] == len(testspeech.LONG_FORMS) and figures["empty_long"] == 0
    assert figures["short"] < 0.2 and figures["long"] < 0.2, figures
    assert quality.judge({"en": figures})[0]


async def test_a_version_that_loses_long_speech_is_refused(stt: TritonClient,
                                                           repository: ModelRepository
                                                           ) -> None:
    """Version 2's files under the figures its export gave before 2026-12-05 (four of six
    recordings empty), and with none at all: validate fails on them, promote refuses."""
    admin = ModelAdmin(repository, stt, grace_s=0.2)
    source = repository.model_dir("stt") / "2"
    for number, figures in ((3, {"en": {"metric": "wer", "short": 0.058, "long": 0.572,
                                        "long_clips": 6, "empty_long": 4}}), (4, None)):
        target = repository.model_dir("stt") / str(number)
        shutil.copytree(source, target)
        manifest = json.loads((target / "manifest.json").read_text())
        manifest["version"] = number
        manifest["extra"].pop("quality")
        if figures:
            manifest["extra"]["quality"] = figures
        (target / "manifest.json").write_text(json.dumps(manifest))
        report = await admin.validate("stt", number)
        failed = {c.name: c.detail for c in report.checks if not c.passed}
        assert set(failed) == {"long_form"}, report.checks
        assert ("came back empty" if figures else "no long-form figures") in failed["long_form"]
        with pytest.raises(VersionRefused, match="long_form"):
            await admin.promote("stt", number)
        shutil.rmtree(target)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"language": "ko"}, "cannot transcribe language 'ko'"),
    ({"task": "translate"}, "cannot translate"),
    ({"prompt": "Beckett"}, "takes no prompt"),
    ({"words": True}, "gives no word timestamps"),
])
async def test_what_moonshine_cannot_do_is_refused(stt: TritonClient, kwargs: dict,
                                                   message: str) -> None:
    (_, beckett), = reference_audio()
    with pytest.raises(InferenceInvalidInput, match=message):
        await SpeechToText(stt).transcribe(beckett[:16000], version="2", **kwargs)


async def test_word_timestamps_go_to_the_whisper_version(stt: TritonClient,
                                                         repository: ModelRepository) -> None:
    """Moonshine (version 2) serves unpinned requests; one asking for word timestamps goes
    to the Whisper version beside it, as a Korean one does."""
    (_, beckett), = reference_audio()
    service = SpeechToText(stt, repository=repository.root)
    assert (await service.transcribe(beckett)).model_version == "2"
    result = await service.transcribe(beckett, words=True)
    assert result.model_version == "1"
    assert all(s.words is not None for s in result.segments)
    assert repository.manifest("stt", 1).extra["word_timestamps"] is True
    assert "word_timestamps" not in repository.manifest("stt", 2).extra


async def test_promote_and_roll_back_across_architectures(stt: TritonClient,
                                                          repository: ModelRepository) -> None:
    admin = ModelAdmin(repository, stt, grace_s=0.2)
    service = SpeechToText(stt)
    (_, beckett), = reference_audio()
    await admin.promote("stt", 1)
    await admin.promote("stt", 2)  # Whisper -> Moonshine
    assert (await service.transcribe(beckett)).text == BECKETT
    rolled = await admin.rollback("stt")  # and back to the (random) Whisper
    assert rolled.served == 1
    result = await service.transcribe(beckett)
    assert result.model_version == "1" and result.text != BECKETT
