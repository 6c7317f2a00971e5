"""``voicechat bench tts`` runs against the session's Triton and reports all three paths."""

from __future__ import annotations

import argparse
import dataclasses
import re

import pytest

from bench import tts as bench
from tests.support.settings import base_settings
from tests.support.tts import JOE_VOICE

pytestmark = [pytest.mark.triton, pytest.mark.realweights]


def test_bench_tts_reports_served_runtime_and_piper(triton_server, tts_model, tmp_path,  # type: ignore[no-untyped-def]
                                                    capsys) -> None:
    settings = dataclasses.replace(base_settings(), triton_url=triton_server.grpc_url,
                                   model_repository=str(triton_server.repository))
    output = tmp_path / "tts.md"
    args = argparse.Namespace(voice=JOE_VOICE, version="", repeat=1, output=str(output),
                              text=["Hello there. How are you?"])
    assert bench.run(args, settings) == 0
    printed = capsys.readouterr().out
    rows = re.findall(r"^\| (served|tts runtime|piper-tts)[^|]*\| (\d+) \| ([\d.]+) \| "
                      r"([\d.]+) \| ([\d.]+) \|$", printed, re.MULTILINE)
    assert [r[0] for r in rows] == ["served", "tts runtime", "piper-tts"]
    for _, first_ms, total_s, audio_s, rtf in rows:
        assert 0 < int(first_ms) <= float(total_s) * 1000 + 1
        assert 1.0 < float(audio_s) < 5.0 and float(rtf) > 0
    assert "voice en_US-joe-medium (22050 Hz)" in output.read_text()
