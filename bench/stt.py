"""``voicechat bench stt``: per-utterance latency and WER of every served stt version
(Whisper and Moonshine side by side) and of the peers a user would pick instead,
faster-whisper int8 and openai-whisper on the same Whisper weights, in one run on the
same audio.

Utterances are English sentences of 2-5 s spoken by espeak-ng (their text is the
reference for WER), or WAV files given with ``--audio`` (``--reference`` their text).
``--long-form N``: N recordings of 2-5 of those sentences with 0.5-3 s silences between
them (8-30 s), the audio single utterances say nothing about. ``--language ko``: twenty
Korean sentences of 4-5 s spoken by the Kokoro voice instead, scored by CER.
Each path transcribes every utterance ``--repeat`` times: latency p50/p95 over all runs,
WER over the last. The served paths go through Triton and the orchestrator's client,
as ``/v1/audio/transcriptions`` does (minus the upload's decode).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import shutil
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.stats import percentile
from bench.wer import error_rate
from export.stt import testspeech

UTTERANCES = list(testspeech.ENGLISH)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--audio", action="append", default=[],
                        help="16 kHz mono 16-bit WAV (repeat; default: espeak-ng sentences)")
    parser.add_argument("--reference", action="append", default=[],
                        help="the text of each --audio, in order (for WER)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per utterance and path")
    parser.add_argument("--versions", default="",
                        help="served stt versions, comma-separated (default: every exported "
                             "version)")
    parser.add_argument("--long-form", type=int, default=0, metavar="N",
                        help="N recordings of 2-5 sentences with 0.5-3 s pauses (8-30 s) "
                             "instead of single utterances")
    parser.add_argument("--language", default="en", help="language given to every path")
    parser.add_argument("--sized-window", type=float, default=None, metavar="SECONDS",
                        help="also run the Whisper versions with encoder windows sized to the "
                             "audio, at least SECONDS (min_window_seconds)")
    parser.add_argument("--no-peers", action="store_true",
                        help="only the served versions (no faster-whisper, openai-whisper)")
    parser.add_argument("--json", dest="json_path", default=None, help="write results here")


@dataclass
class PathResult:
    name: str
    latencies_s: list[float] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    note: str = ""

    def row(self, references: list[str], audio_s: float, language: str = "en") -> dict:
        if not self.latencies_s:
            return {"path": self.name, "note": self.note}
        mean = float(np.mean(self.latencies_s))
        metric, score = error_rate(language)
        return {"path": self.name, "p50_ms": round(percentile(self.latencies_s, 50) * 1000, 1),
                "p95_ms": round(percentile(self.latencies_s, 95) * 1000, 1),
                "rtf": round(mean / audio_s, 3),
                metric: round(score(references, self.texts), 4),
                "note": self.note}


def _speak(texts: list[str], rate_wpm: tuple[int, ...] = (150,)) -> list[np.ndarray]:
    """espeak-ng at each of ``rate_wpm`` words per minute in turn."""
    try:
        speaker = testspeech.voices(*(testspeech.espeak_speaker("en-us", wpm)
                                      for wpm in rate_wpm))
    except RuntimeError as exc:
        raise SystemExit(f"{exc} (or pass --audio)") from None
    return [speaker(text) for text in texts]


def _long_form(count: int, language: str) -> tuple[list[str], list[np.ndarray]]:
    """``count`` long recordings of the utterances (:func:`testspeech.random_layouts`)."""
    sentences, speaker = _language(language)
    clips = testspeech.long_clips(sentences, speaker,
                                  testspeech.random_layouts(count, len(sentences)))
    return [c.text for c in clips], [c.audio for c in clips]


def _language(language: str) -> tuple[tuple[str, ...], testspeech.Speaker]:
    """The sentences and the speaker of a benched language (English: espeak-ng at 150
    and 185 words per minute; Korean: the Kokoro voice)."""
    if language == "ko":
        return testspeech.KOREAN, testspeech.kokoro_speaker()
    if language != "en":
        raise SystemExit(f"--language {language}: the built-in speech is English or Korean "
                         "(pass --audio and --reference for others)")
    return testspeech.ENGLISH, testspeech.voices(*(testspeech.espeak_speaker("en-us", wpm)
                                                   for wpm in (150, 185)))


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        if wav.getframerate() != 16_000 or wav.getnchannels() != 1:
            raise SystemExit(f"{path}: need 16 kHz mono WAV")
        return np.frombuffer(wav.readframes(wav.getnframes()), np.int16).astype(np.float32) \
            / 32768.0


def _timed(name: str, transcribe: Callable[[np.ndarray], str], clips: list[np.ndarray],
           repeat: int, note: str = "") -> PathResult:
    result = PathResult(name, note=note)
    transcribe(clips[0])  # warm-up
    for run in range(repeat):
        texts = []
        for clip in clips:
            started = time.perf_counter()
            texts.append(transcribe(clip).strip())
            result.latencies_s.append(time.perf_counter() - started)
        if run == repeat - 1:
            result.texts = texts
    return result


async def _served(url: str, repository: str, versions: list[int], clips: list[np.ndarray],
                  args: argparse.Namespace, window: float | None = None) -> list[PathResult]:
    from export.profiles import repository_profile
    from export.repository import ModelRepository
    from export.specs.stt import SPEC
    from orchestrator.inference.client import TritonClient
    from orchestrator.speech.stt import SpeechToText

    client = TritonClient(url, timeout_s=600)
    try:
        profile = repository_profile(Path(repository))
        parameters = {"min_window_seconds": str(window)} if window else None
        config = profile.apply(SPEC).config_json(gpu=profile.gpu, versions=versions,
                                                 parameters=parameters)
        await client.raw.load_model("stt", config=json.dumps(config), client_timeout=600)
        stt = SpeechToText(client)
        results = []
        for version in versions:
            manifest = ModelRepository(repository).manifest("stt", version)
            architecture = manifest.extra.get("architecture", "whisper")
            name = f"served stt:{version} ({architecture})"
            if window:
                name += f" sized >={window:g} s"
            result = PathResult(name, note=_describe(manifest))
            await stt.transcribe(clips[0], language=args.language, version=str(version))
            for run in range(args.repeat):
                texts = []
                for clip in clips:
                    started = time.perf_counter()
                    heard = await stt.transcribe(clip, language=args.language,
                                                 version=str(version))
                    result.latencies_s.append(time.perf_counter() - started)
                    texts.append(heard.text.strip())
                if run == args.repeat - 1:
                    result.texts = texts
            results.append(result)
            if not args.long_form:  # a realtime turn is one utterance
                results.append(await _realtime_final(stt, version, name, clips, args))
        return results
    finally:
        await client.close()


PREFIX_S, SILENCE_S, PARTIAL_EVERY_S = 0.3, 0.5, 0.5


async def _realtime_final(stt, version: int, name: str, clips: list[np.ndarray],  # type: ignore[no-untyped-def]
                          args: argparse.Namespace) -> PathResult:
    """End of speech -> final transcript as a realtime turn sees it: the committed turn
    is the VAD's prefix + speech + the confirming silence, and the final decode is given
    the tokens of the last partial (taken, on average, half a partial interval before the
    speech ended)."""
    result = PathResult(f"{name} realtime final",
                        note="end of speech -> transcript, draft from the last partial")
    lead = np.zeros(int(PREFIX_S * 16_000), np.float32)
    tail = np.zeros(int(SILENCE_S * 16_000), np.float32)
    for run in range(args.repeat):
        texts = []
        for clip in clips:
            turn = np.concatenate([lead, clip, tail])
            seen = turn[:lead.size + max(clip.size - int(PARTIAL_EVERY_S / 2 * 16_000),
                                         16_000)]
            partial = await stt.transcribe(seen, language=args.language, version=str(version))
            draft = list(partial.segments[0].tokens) if len(partial.segments) == 1 else []
            started = time.perf_counter()
            heard = await stt.transcribe(turn, language=args.language, version=str(version),
                                         draft=draft)
            result.latencies_s.append(time.perf_counter() - started)
            texts.append(heard.text.strip())
        if run == args.repeat - 1:
            result.texts = texts
    return result


def _describe(manifest) -> str:  # type: ignore[no-untyped-def]
    dims = manifest.dimensions
    if manifest.extra.get("architecture") == "moonshine":
        return f"Moonshine, {dims.get('decoder_layers')} decoder layers"
    return (f"Whisper, {dims.get('n_audio_layer')} encoder layers, "
            f"{manifest.source.get('kind')} source")


def _peers(manifest, clips: list[np.ndarray], args: argparse.Namespace) -> list[PathResult]:  # type: ignore[no-untyped-def]
    """faster-whisper int8 and openai-whisper on the Whisper version's own weights."""
    results = []
    source = manifest.source
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        results.append(PathResult("faster-whisper int8", note="not installed"))
    else:
        if source.get("kind") == "ctranslate2":
            fw = WhisperModel(_ct2_directory(source, Path(tempfile.mkdtemp())), device="cpu",
                              compute_type="int8")

            def fw_run(clip: np.ndarray) -> str:
                segments, _ = fw.transcribe(clip, beam_size=1, temperature=0.0,
                                            language=args.language, without_timestamps=True)
                return "".join(s.text for s in segments)

            results.append(_timed("faster-whisper int8 (CTranslate2)", fw_run, clips,
                                  args.repeat, note="same weights, greedy"))
        else:
            results.append(PathResult("faster-whisper int8",
                                      note="needs a CTranslate2 source in the manifest"))
    import whisper

    from export.stt.sources import load_source

    model = load_source(source.get("path") or source["name"], source.get("parts", ())).model
    options = {"temperature": 0.0, "fp16": False, "language": args.language,
               "condition_on_previous_text": False}
    results.append(_timed("openai-whisper (PyTorch)",
                          lambda clip: whisper.transcribe(model, clip, **options)["text"],
                          clips, args.repeat, note="same weights, greedy"))
    return results


def run(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from export.repository import ModelRepository
    from orchestrator.inference.embedded import triton_for
    from orchestrator.models.startup import PROMOTED

    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # one line per file
    repository = ModelRepository(settings.model_repository)
    if args.audio:
        clips = [_read_wav(Path(p)) for p in args.audio]
        references = args.reference or [""] * len(clips)
        if len(references) != len(clips):
            raise SystemExit("give one --reference per --audio")
    elif args.long_form:
        references, clips = _long_form(args.long_form, args.language)
    elif args.language == "ko":
        sentences, speaker = _language("ko")
        references, clips = list(sentences), [speaker(s) for s in sentences]
    else:
        references, clips = UTTERANCES, _speak(UTTERANCES)
    versions = [int(v) for v in args.versions.split(",") if v] or repository.versions("stt")
    if args.language != "en":  # English-only versions (Moonshine) refuse other languages
        versions = [v for v in versions
                    if repository.manifest("stt", v).extra.get("multilingual", True)]
    if not versions:
        raise SystemExit("no stt version is exported for this language (python -m export "
                         "stt --source …)")
    with triton_for(settings, {"stt"}, PROMOTED) as served:
        results = asyncio.run(_served(served.triton_url, settings.model_repository, versions,
                                      clips, args))
        whisper = [v for v in versions if repository.manifest("stt", v).extra.get(
            "architecture", "whisper") == "whisper"]
        if args.sized_window and whisper:
            results += asyncio.run(_served(served.triton_url, settings.model_repository,
                                           whisper, clips, args, window=args.sized_window))
    if not args.no_peers:
        whisper_versions = [v for v in versions if repository.manifest("stt", v).extra.get(
            "architecture", "whisper") == "whisper"]
        if whisper_versions:
            results += _peers(repository.manifest("stt", whisper_versions[-1]), clips, args)
    audio_s = float(np.mean([c.size for c in clips])) / 16_000
    rows = [r.row(references, audio_s, args.language) for r in results]
    metric = error_rate(args.language)[0].upper()
    kind = "long recordings" if args.long_form else "utterances"
    print(f"machine: {platform.machine()}, {_cpus()} CPU cores; {len(clips)} {kind} of "
          f"{min(c.size for c in clips) / 16000:.1f}-{max(c.size for c in clips) / 16000:.1f} s "
          f"(mean {audio_s:.2f} s), {args.repeat} runs each, language {args.language}")
    print(f"{'path':<44} {'p50 ms':>8} {'p95 ms':>8} {'RTF':>7} {metric:>7}  note")
    for row in rows:
        if "p50_ms" not in row:
            print(f"{row['path']:<44} {'-':>8} {'-':>8} {'-':>7} {'-':>7}  {row['note']}")
            continue
        print(f"{row['path']:<44} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} "
              f"{row['rtf']:>7.3f} {row[metric.lower()]:>7.3f}  {row['note']}")
    for result in results:
        if result.texts:
            print(f"  {result.name}: {result.texts[0]!r}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"rows": rows, "utterances": references},
                                                   indent=2) + "\n", encoding="utf-8")
    return 0


def _ct2_directory(source: dict, scratch: Path) -> str:
    """A directory faster-whisper can open: split model.bin parts are joined into one."""
    path = Path(source["path"])
    if (path / "model.bin").is_file():
        return str(path)
    for extra in ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json",
                  "preprocessor_config.json"):
        if (path / extra).is_file():
            shutil.copyfile(path / extra, scratch / extra)
    with open(scratch / "model.bin", "wb") as out:
        for part in source["parts"]:
            out.write(Path(part).read_bytes())
    return str(scratch)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
