"""Kokoro decoded in pieces (export/tts/runtime/kokoro.py), with fake graphs: the trim
applied piece by piece equals the trim of the whole, and the pieces cover exactly the
frames from a few before the first token ends to a few after the last spoken one, each
decoded with its context. The real graph's pieces are checked in
tests/integration/tts/test_kokoro_served.py."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from export.tts.runtime.kokoro import KokoroVoice, Trimmer, trim

RATE = 24000
HOP = 600


def _trimmed_in_pieces(audio: np.ndarray, cuts: list[int]) -> np.ndarray:
    trimmer = Trimmer(RATE)
    out = [trimmer.feed(piece) for piece in np.split(audio, cuts)]
    return np.concatenate([*out, trimmer.finish()])


@pytest.mark.parametrize("cuts", [[], [100], [3000, 9000], [700, 701, 12000, 20000]])
def test_trimming_pieces_is_trimming_the_whole(cuts: list[int]) -> None:
    rng = np.random.default_rng(0)
    audio = np.zeros(24000, np.float32)
    audio[5000:8000] = rng.uniform(-0.5, 0.5, 3000)  # a word
    audio[14000:17000] = rng.uniform(-0.5, 0.5, 3000)  # a pause, then another
    np.testing.assert_array_equal(_trimmed_in_pieces(audio, cuts), trim(audio, RATE))


def test_audio_that_never_gets_loud_is_kept_whole_as_trim_keeps_it() -> None:
    quiet = np.full(5000, 0.001, np.float32)
    np.testing.assert_array_equal(_trimmed_in_pieces(quiet, [1000, 3000]), trim(quiet, RATE))


class _Front:
    """Frames are numbered: asr[:, :, t] == t, so the fake decoder can say which it got."""

    def __init__(self, durations: list[int]) -> None:
        self.durations = durations

    def run(self, names, feeds):  # type: ignore[no-untyped-def]
        frames = sum(self.durations)
        asr = np.broadcast_to(np.arange(frames, dtype=np.float32), (1, 512, frames)).copy()
        twice = np.zeros((1, 2 * frames), np.float32)
        return [asr, twice, twice, np.zeros((1, 9, 2 * frames), np.float32),
                np.asarray([self.durations], np.float32)]


class _Decoder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def get_inputs(self):  # type: ignore[no-untyped-def]
        return [SimpleNamespace(name=n) for n in ("asr", "f0", "n", "phase", "style", "m0")]

    def run(self, names, feeds):  # type: ignore[no-untyped-def]
        frames = feeds["asr"][0, 0]
        assert feeds["m0"] is not None  # the voice's statistic is fed
        self.calls.append((int(frames[0]), int(frames[-1]) + 1))
        return [np.repeat(frames, HOP)[None, :]]  # every sample says its frame


def _voice(decoder: _Decoder, durations: list[int], context: int = 8) -> KokoroVoice:
    config = SimpleNamespace(name="ko-test", phoneme_id_map={" ": [16], ".": [4], "a": [43]},
                             sample_rate=RATE, pause_s=0.0, max_tokens=510,
                             stream={"hop": HOP, "context_frames": context,
                                     "first_frames": 20, "later_frames": 160,
                                     "edge_frames": 8})
    return KokoroVoice(config, _Front(durations), np.zeros((510, 1, 256), np.float32),
                       decoder, [np.zeros((5, 1, 4, 1), np.float32)])


def test_pieces_cover_the_spoken_frames_once_each_with_their_context() -> None:
    decoder = _Decoder()
    # pad 15 frames, three sounds of 40, a closing mark of 20, the end pad 1: 156 frames
    voice = _voice(decoder, [15, 40, 40, 40, 20, 1])
    pieces = [(audio, last) for audio, last in voice.decoded([43, 43, 43, 4], 1.0)]
    frames = np.concatenate([audio for audio, _ in pieces])[::HOP]
    # from 8 frames before the pad ends to 8 after the last sound (the mark is silence)
    np.testing.assert_array_equal(frames, np.arange(15 - 8, 135 + 8))
    assert [a.size // HOP for a, _ in pieces] == [20, 116]
    assert [last for _, last in pieces] == [False, True]
    # each piece's decode reaches 8 frames either side, within the sentence
    assert decoder.calls == [(0, 35), (19, 151)]


def test_a_long_sentence_goes_in_pieces_of_the_later_size() -> None:
    decoder = _Decoder()
    voice = _voice(decoder, [15, *[40] * 12, 1])  # 480 spoken frames
    sizes = [audio.size // HOP for audio, _ in voice.decoded([43] * 12, 1.0)]
    assert sizes == [20, 160, 160, 149] and sum(sizes) == 15 + 480 + 1 - 7  # to the end


def test_a_short_word_is_one_piece() -> None:
    decoder = _Decoder()
    voice = _voice(decoder, [14, 12, 9])
    pieces = list(voice.decoded([43], 1.0))
    assert len(pieces) == 1 and pieces[0][1]
    assert pieces[0][0].size == HOP * (14 + 12 + 8 - 6)


class _FrontPerToken(_Front):
    """A lead pad of 15 frames, 40 frames a token, an end pad of 1."""

    def __init__(self) -> None:
        super().__init__([])

    def run(self, names, feeds):  # type: ignore[no-untyped-def]
        self.durations = [15, *[40] * (feeds["tokens"].shape[1] - 2), 1]
        return super().run(names, feeds)


def test_more_ids_than_the_graph_takes_are_said_in_runs_each_with_its_pause() -> None:
    voice = _voice(_Decoder(), [])
    voice.session = _FrontPerToken()
    voice.config.max_tokens, voice.config.pause_s = 2, 0.1
    audio = voice.run([43, 43, 43], noise_scale=0.0, length_scale=1.0, noise_w=0.0)
    pause = np.zeros(int(0.1 * RATE), np.float32)
    # each run: frame 7 (15 - 8) to its last frame (the last token's end + 8 is past it),
    # all loud, then the pause
    first = np.repeat(np.arange(7, 15 + 80 + 1, dtype=np.float32), HOP)
    second = np.repeat(np.arange(7, 15 + 40 + 1, dtype=np.float32), HOP)
    np.testing.assert_array_equal(audio, np.concatenate([first, pause, second, pause]))


def test_a_decoder_and_statistics_that_do_not_match_are_refused() -> None:
    with pytest.raises(ValueError, match="takes 1 statistics, the voice has 2"):
        KokoroVoice(_voice(_Decoder(), [15, 40, 1]).config, _Front([15, 40, 1]),
                    np.zeros((510, 1, 256), np.float32), _Decoder(),
                    [np.zeros((5, 1, 4, 1), np.float32)] * 2)
