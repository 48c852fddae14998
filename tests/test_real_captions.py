"""Alignment of real speech under real captions: approximate times, wrong words, another recording.

Every test aligns real recordings (LibriVox read speech; the shared talking
head where present) and checks what happens to each cue: which recovery rungs
were tried, what was kept, and what was excluded and why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fixtures.faces_media import AOC, aoc_corpus, shared
from fixtures.librivox import needs_librivox, transcripts, wav
from pipeline.align import Utterance
from pipeline.align.cues import merge_overlapping, next_floor, search_window
from pipeline.align.mfa import Interval, parse_textgrid
from pipeline.align.pauses import find_pauses
from pipeline.audio import decode_audio
from pipeline.phonemes import to_cmu39

pytestmark = needs_librivox


@pytest.fixture(scope="module")
def aligner():
    from pipeline.align.sphinx import SphinxAligner

    return SphinxAligner()


@pytest.fixture(scope="module")
def passage() -> tuple[np.ndarray, list[float], list[tuple[str, ...]]]:
    """The five LibriVox utterances as one 25 s clip: audio, utterance bounds, words of each."""
    utts = sorted(transcripts())
    clips = [decode_audio(wav(u)) for u in utts]
    bounds = np.cumsum([0.0] + [len(c) / 16000 for c in clips]).tolist()
    return np.concatenate(clips), bounds, [transcripts()[u] for u in utts]


@pytest.fixture(scope="module")
def cold_corpus(mfa_sdist_files: Path) -> tuple[np.ndarray, list[Interval]]:
    """MFA 3.4.3's ``cold_corpus``: 25.7 s of spontaneous speech in a hoarse voice, and MFA's word tier."""
    words = [iv for iv in parse_textgrid(mfa_sdist_files / "cold_corpus.TextGrid")["words"] if iv[2]]
    return decode_audio(mfa_sdist_files / "cold_corpus.wav"), words


@pytest.fixture(scope="module")
def multilingual_ipa(mfa_sdist_files: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    """MFA 3.4.3's ``multilingual_ipa``: 4.1 s, "i can't think of an animal that's less chad like than a sloth"."""
    return (decode_audio(mfa_sdist_files / "multilingual_ipa.flac"),
            tuple((mfa_sdist_files / "multilingual_ipa.txt").read_text().split()))


def cues_at(bounds: list[float], words: list[tuple[str, ...]], shift: list[float]) -> list[Utterance]:
    end = bounds[-1]
    return [Utterance(i, min(max(bounds[i] + shift[2 * i], 0.0), end - 0.5),
                      min(max(bounds[i + 1] + shift[2 * i + 1], bounds[i] + 0.5), end), w)
            for i, w in enumerate(words)]


def spoken(phones) -> list[str]:
    return [to_cmu39(p.phone) for p in phones if to_cmu39(p.phone) is not None]


def word_starts(phones) -> list[tuple[int, str, float]]:
    """(cue, word, start) of each aligned word: phones of one word run back to back."""
    out: list[tuple[int, str, float]] = []
    for before, p in zip([None, *phones], phones):
        if before is None or (p.cue, p.word) != (before.cue, before.word) or p.start_s > before.end_s + 1e-6:
            out.append((p.cue, p.word, p.start_s))
    return out


# --- planning ----------------------------------------------------------------

def test_overlapping_cues_are_searched_together_and_windows_never_reach_back() -> None:
    cues = [Utterance(0, 0.0, 3.0, ("a", "b")), Utterance(1, 2.0, 4.0, ("c",)), Utterance(2, 4.0, 6.0, ("d",)),
            Utterance(3, 5.0, 5.5, ())]
    first, second = merge_overlapping(cues)
    assert (first.words, first.word_cues, first.start_s, first.end_s) == (("a", "b", "c"), (0, 0, 1), 0.0, 4.0)
    assert second.cues == (2,) and first.where() == "cues 0-1 (0.00-4.00 s)"
    assert first.label(1) == "cue 1 (2.00-4.00 s)" and first.label(0) == "cue 0 (0.00-3.00 s)"  # their own times
    assert search_window(second, pad_s=0.5, floor_s=3.8, audio_s=6.2) == (3.8, 6.2)
    assert search_window(second, pad_s=0.5, floor_s=0.0, audio_s=10.0) == (3.5, 6.5)
    assert search_window(second, pad_s=0.4567, floor_s=0.0, audio_s=10.0) == (3.54, 6.46)  # the 10 ms grid
    assert search_window(second, pad_s=0.5, floor_s=9.79, audio_s=12.0)[0] == 9.79  # 9.79 * 100 is 978.99...
    assert search_window(second, pad_s=0.5, floor_s=4.005, audio_s=12.0)[0] == 4.01  # never before the floor
    # a last word stretched over the next cue's speech does not hide it from the next cue
    assert next_floor(second, last_word_end_s=7.9, tolerance_s=0.25) == 6.25
    assert next_floor(second, last_word_end_s=5.7, tolerance_s=0.25) == 5.7


# --- approximate times: the ladder -----------------------------------------------

def test_exact_and_jittered_cues_align_in_their_window(aligner, passage) -> None:
    audio, bounds, words = passage
    exact = aligner.align("p", audio, 16000, cues_at(bounds, words, [0.0] * 10))
    shift = np.random.default_rng(3).uniform(-0.3, 0.3, 10).tolist()
    jittered = aligner.align("p", audio, 16000, cues_at(bounds, words, shift))
    for result in (exact, jittered):
        assert result.coverage == 1.0
        assert [o.status for o in result.outcomes] == ["aligned"] * 5
        assert all(o.score > -30 for o in result.outcomes)
    assert {o.rungs for o in exact.outcomes} == {("window",)}
    assert spoken(jittered.phones) == spoken(exact.phones)
    delta = np.abs(np.array([p.start_s for p in jittered.phones if to_cmu39(p.phone)])
                   - np.array([p.start_s for p in exact.phones if to_cmu39(p.phone)]))
    assert np.median(delta) <= 0.011 and np.mean(delta <= 0.02) >= 0.9


def test_cue_times_a_second_late_are_recovered_by_widening(aligner, passage) -> None:
    audio, bounds, words = passage
    late = aligner.align("p", audio, 16000, cues_at(bounds, words, [1.0] * 10))
    assert late.coverage == 1.0
    assert sum("widen" in o.rungs for o in late.outcomes) >= 3
    exact = aligner.align("p", audio, 16000, cues_at(bounds, words, [0.0] * 10))
    late_words, exact_words = word_starts(late.phones), word_starts(exact.phones)
    assert [w[:2] for w in late_words] == [w[:2] for w in exact_words]
    assert np.median([abs(a[2] - b[2]) for a, b in zip(late_words, exact_words)]) <= 0.011


def test_a_caption_word_that_is_not_spoken_is_skipped_and_the_rest_kept(aligner) -> None:
    utt = "sense_and_sensibility_01_austen_64kb-0880"  # "he was not an ill disposed young man"
    audio = decode_audio(wav(utt))
    words = transcripts()[utt][:4] + ("really",) + transcripts()[utt][4:]
    result = aligner.align("c", audio, 16000, [Utterance(0, 0.0, len(audio) / 16000, words)])
    (outcome,) = result.outcomes
    assert (outcome.status, outcome.reason, outcome.aligned_words, outcome.caption_words) == \
        ("partial", "words_skipped", 8, 9)
    assert outcome.rungs == ("window", "widen", "rechunk", "skip") or outcome.rungs[-1] == "skip"
    assert "really" in outcome.detail and "really" not in {p.word for p in result.phones}
    assert [p.word for p in result.phones if p.word != "really"][:2] == ["he", "he"]


def test_a_cue_cut_short_before_its_last_words_is_rechunked(aligner) -> None:
    """The failure the shared talking head showed: a cue ending before its speech does."""
    audio = decode_audio(shared(AOC))
    words = ("feature", "for", "our", "country", "and", "our", "world", "infidelity")
    result = aligner.align("aoc", audio, 16000, [
        Utterance(0, 0.0, 3.9, ("everyone", "here", "to", "gain", "tampering", "twitch", "the", "better", "or",
                                "just")),
        Utterance(1, 3.9, 7.8, words)])
    assert [o.status for o in result.outcomes] == ["aligned", "aligned"] and result.coverage == 1.0
    assert result.outcomes[1].window_end_s == 8.0  # the window reached past the cue's end
    last = [p for p in result.phones if p.word == "infidelity"]
    assert last and 7.0 < last[0].start_s < last[-1].end_s <= 8.0


def test_unreliable_cue_times_fall_back_to_the_whole_clips_text(aligner, passage) -> None:
    audio, bounds, words = passage
    # every cue claims to be 4 s earlier than it is: no window holds its words
    early = [Utterance(i, max(bounds[i] - 4.0, 0.0), max(bounds[i + 1] - 4.0, 1.0), w) for i, w in enumerate(words)]
    result = aligner.align("p", audio, 16000, early)
    assert result.coverage >= 0.95
    assert all(o.rungs == ("whole_clip",) for o in result.outcomes)
    exact = aligner.align("p", audio, 16000, cues_at(bounds, words, [0.0] * 10))
    assert [w[:2] for w in word_starts(result.phones)] == [w[:2] for w in word_starts(exact.phones)]


def test_pauses_found_in_a_hoarse_monologue_are_its_long_pauses(cold_corpus) -> None:
    """Its hum and breath are louder than its voice in places; the speech band still shows every long pause."""
    audio, words = cold_corpus
    silences = [(a[1], b[0]) for a, b in zip([(0.0, 0.0, ""), *words], [*words, (len(audio) / 16000,) * 2])]
    long_silences = [(a, b) for a, b in silences if b - a >= 0.5]
    assert len(long_silences) == 6
    pauses = find_pauses(audio, 16000)
    for a, b in long_silences:  # each long pause of MFA's alignment is (mostly) found
        assert sum(max(0.0, min(b, p.end_s) - max(a, p.start_s)) for p in pauses) >= 0.7 * (b - a), (a, b)
    quiet = sum(max(0.0, min(b + 0.05, p.end_s) - max(a - 0.05, p.start_s)) for p in pauses for a, b in silences)
    assert quiet >= 0.8 * sum(p.duration_s for p in pauses)  # what is found lies in MFA's silences


def test_a_long_single_cue_of_spontaneous_speech_is_cut_at_its_pauses(aligner, cold_corpus) -> None:
    """The 25.7 s monologue as one cue: the prefix search loses its way at its pauses; pieces cut there align."""
    audio, words = cold_corpus
    caption = tuple(label for _, _, label in words)
    result = aligner.align("cold", audio, 16000, [Utterance(0, 0.0, len(audio) / 16000, caption)])
    (outcome,) = result.outcomes
    assert outcome.kept and "pauses" in outcome.rungs
    assert outcome.aligned_words >= 0.7 * len(caption)  # 48 of 64 (42 when searches read a rescored lattice)
    # the words placed agree with MFA's own alignment
    errors = [min(abs(start - a) for a, _, label in words if label == word) for _, word, start in word_starts(
        result.phones)]
    assert np.median(errors) <= 0.05 and np.mean(np.array(errors) <= 0.1) >= 0.8


def test_a_cue_the_lattice_cannot_align_aligns_from_the_viterbi_path(aligner, multilingual_ipa) -> None:
    """The word placement of pocketsphinx's rescored lattice fails the phone pass here; the Viterbi path's does not."""
    from pocketsphinx import Decoder

    from pipeline.align.sphinx import _PAD_S

    audio, words = multilingual_ipa
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
    pad = round(_PAD_S * 16000)

    def two_passes(decoder: Decoder, lead: int) -> None:
        data = np.concatenate([np.zeros(lead, np.int16), pcm, np.zeros(pad, np.int16)]).tobytes()
        decoder.set_align_text(" ".join(words))
        for _ in range(2):
            decoder.start_utt()
            decoder.process_raw(data, full_utt=True)
            decoder.end_utt()
            if decoder.get_alignment() is None:
                decoder.set_alignment()

    for lead in (pad, pad + 80):  # the aligner's lattice attempts: frames as they fall, then half a frame later
        with pytest.raises(RuntimeError, match="stop utterance"):
            two_passes(Decoder(lm=None, loglevel="FATAL"), lead)
    two_passes(Decoder(lm=None, loglevel="FATAL", bestpath=False), pad)

    result = aligner.align("ipa", audio, 16000, [Utterance(0, 0.0, len(audio) / 16000, words)])
    (outcome,) = result.outcomes
    assert (outcome.status, outcome.aligned_words) == ("aligned", 13) and outcome.score > -25
    starts = word_starts(result.phones)
    assert [w for _, w, _ in starts] == list(words)
    assert 0.2 <= starts[0][2] and starts[-1][2] < len(audio) / 16000 - 0.2


def test_an_alignment_does_not_depend_on_what_the_aligner_aligned_before(multilingual_ipa) -> None:
    """pocketsphinx carries its noise estimate from one utterance to the next unless told to reset it.

    Without the reset, 4 of these 40 phones came out different (2 of them moved)
    after the aligner had heard loud noise: an ingest's results would depend on
    which clips each worker thread happened to get before.
    """
    from pipeline.align.sphinx import SphinxAligner

    audio, words = multilingual_ipa
    cue = [Utterance(0, 0.0, len(audio) / 16000, words)]
    noise = (0.3 * np.random.default_rng(0).standard_normal(3 * 16000)).astype(np.float32)
    fresh = SphinxAligner().align("ipa", audio, 16000, cue)
    aligner = SphinxAligner()
    aligner.align("noise", noise, 16000, [Utterance(0, 0.0, 3.0, ("hello", "world"))])
    after = aligner.align("ipa", audio, 16000, cue)
    assert len(fresh.phones) == 40
    assert after.phones == fresh.phones and after.outcomes == fresh.outcomes


def test_a_decode_the_ladder_repeats_is_answered_from_memory_with_the_same_result(cold_corpus, monkeypatch) -> None:
    """``cold_corpus`` as one cue climbs every rung; rungs repeat some of each other's decodes."""
    from pipeline.align.sphinx import SphinxAligner

    audio, intervals = cold_corpus
    cue = [Utterance(0, 0.0, len(audio) / 16000, tuple(w for _, _, w in intervals))]
    decodes = []
    decode = SphinxAligner._decode
    monkeypatch.setattr(SphinxAligner, "_decode", staticmethod(lambda d, data: (decodes.append(1), decode(d, data))))
    remembered = SphinxAligner().align("cold", audio, 16000, cue)
    n_remembered = len(decodes)
    monkeypatch.setattr(SphinxAligner, "_remembered", lambda self, question, pcm, work: work())
    decodes.clear()
    decoded = SphinxAligner().align("cold", audio, 16000, cue)
    assert remembered.phones == decoded.phones and remembered.outcomes == decoded.outcomes
    assert remembered.outcomes[0].rungs == ("window", "pauses", "rechunk", "skip")
    assert n_remembered < len(decodes)


# --- confidence ------------------------------------------------------------------

def test_a_caption_from_another_recording_is_a_mismatch_and_excluded(aligner, passage) -> None:
    audio, bounds, words = passage
    swapped = list(words)
    swapped[2] = ("the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "and", "runs", "away")
    result = aligner.align("p", audio, 16000, cues_at(bounds, swapped, [0.0] * 10))
    statuses = [o.status for o in result.outcomes]
    assert statuses[:2] + statuses[3:] == ["aligned"] * 4 and statuses[2] in ("mismatch", "failed")
    bad = result.outcomes[2]
    assert bad.detail.startswith(f"cue 2 ({bounds[2]:.2f}-{bounds[3]:.2f} s): ")
    assert "do not match" in bad.detail or "not found" in bad.detail or "do not fit" in bad.detail
    assert {p.cue for p in result.phones} == {0, 1, 3, 4}
    assert result.coverage == pytest.approx((22 + 8 + 19 + 8) / (22 + 8 + 12 + 19 + 8))


def test_scores_separate_matching_captions_from_wrong_ones(aligner) -> None:
    texts = transcripts()
    right, wrong = [], []
    for utt, words in texts.items():
        audio = decode_audio(wav(utt))
        span = [Utterance(0, 0.0, len(audio) / 16000, words)]
        right.append(aligner.align(utt, audio, 16000, span).outcomes[0])
        other = next(w for u, w in texts.items() if u != utt and len(w) >= len(words) // 2)
        wrong.append(aligner.align(utt, audio, 16000, [Utterance(0, 0.0, len(audio) / 16000, other)]).outcomes[0])
    assert all(o.status == "aligned" and o.score > -20 for o in right)
    assert all(not o.kept for o in wrong)


# --- through the warehouse -------------------------------------------------------

@pytest.mark.integration
def test_shared_talking_head_with_recognised_captions_reaches_spans_and_shards(tmp_path: Path) -> None:
    """The committed captions were made by speech recognition (tests/fixtures/captions/README.md)."""
    from click.testing import CliRunner
    from prefect.testing.utilities import prefect_test_harness

    from talkface_cli import cli
    from warehouse.store import Warehouse

    args = ["refresh", "--corpus", str(aoc_corpus(tmp_path / "corpus")), "--warehouse", str(tmp_path / "wh"),
            "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    with prefect_test_harness():
        run = CliRunner().invoke(cli, args)
    assert run.exit_code == 0, run.output
    assert "cues: 2 aligned; caption words kept: 100.0%" in run.output
    wh = Warehouse(tmp_path / "wh")
    assert [r["status"] for r in wh.read("cue_outcomes").to_pylist()] == ["aligned", "aligned"]
    (hist,) = wh.read("phoneme_histograms").to_pylist()
    assert hist["coverage"] == 1.0 and hist["n_phones"] >= 50
    (span,) = wh.read("clip_spans").to_pylist()
    assert span["n_frames"] >= 70
    (shard,) = wh.read("feature_shards").to_pylist()
    assert shard["n_frames"] == span["n_frames"] and (tmp_path / "wh" / shard["shard_uri"]).is_file()
    assert wh.read("rejects").num_rows == 0


def recognised_cues(audio: np.ndarray, window_s: float = 4.0) -> list[tuple[float, float, str]]:
    """Automatic captions as a recogniser makes them: pocketsphinx with its language model, fixed windows."""
    from pocketsphinx import Decoder

    decoder = Decoder(loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes(), full_utt=True)
    decoder.end_utt()
    words = [(s.start_frame / 100, s.word.split("(")[0]) for s in decoder.seg() if s.word[0] not in "<["]
    end = len(audio) / 16000
    cues = []
    for k in range(int(np.ceil(end / window_s))):
        text = " ".join(w for t, w in words if k * window_s <= t < (k + 1) * window_s)
        if text:
            cues.append((k * window_s, min((k + 1) * window_s, end), text))
    return cues


def vtt(cues: list[tuple[float, float, str]]) -> str:
    def stamp(t: float) -> str:
        return f"00:00:{int(t):02d}.{round(t % 1 * 1000):03d}"
    return "WEBVTT\n\n" + "".join(f"{stamp(a)} --> {stamp(b)}\n{text}\n\n" for a, b, text in cues)


@pytest.mark.integration
def test_talking_heads_with_jittered_overlapping_and_recognised_captions_reach_spans_and_shards(tmp_path):
    """LibriVox talking heads (the demo corpus) captioned as in the wild, through refresh to shards."""
    from click.testing import CliRunner
    from prefect.testing.utilities import prefect_test_harness

    from pipeline.demo_corpus import build_demo_corpus
    from talkface_cli import cli
    from warehouse.store import Warehouse

    videos = build_demo_corpus(tmp_path / "corpus", clips=3)
    for k, video in enumerate(videos):
        words = transcripts()[video.stem]
        end = len(decode_audio(wav(video.stem))) / 16000
        third, cut = len(words) // 3, end / 3
        if k == 0:  # three cues, each boundary moved by up to 300 ms
            cues = [(0.25, cut - 0.3, words[:third]), (cut - 0.3, 2 * cut + 0.3, words[third: 2 * third]),
                    (2 * cut + 0.3, end - 0.2, words[2 * third:])]
            cues = [(a, b, " ".join(w)) for a, b, w in cues]
        elif k == 1:  # overlapping cues, as two speakers' lines or rolling captions show them
            cues = [(0.0, cut + 1.0, " ".join(words[:third])), (cut, 2 * cut + 1.0, " ".join(words[third: 2 * third])),
                    (2 * cut, end, " ".join(words[2 * third:]))]
        else:  # made by speech recognition in fixed 4 s windows
            cues = recognised_cues(decode_audio(wav(video.stem)))
        video.with_suffix(".en.vtt").write_text(vtt(cues))
    args = ["refresh", "--corpus", str(tmp_path / "corpus"), "--warehouse", str(tmp_path / "wh"),
            "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    with prefect_test_harness():
        run = CliRunner().invoke(cli, args)
    assert run.exit_code == 0, run.output
    wh = Warehouse(tmp_path / "wh")
    assert wh.read("rejects").num_rows == 0
    histograms = wh.read("phoneme_histograms").to_pylist()
    assert len(histograms) == 3 and all(h["coverage"] >= 0.85 for h in histograms), histograms
    assert wh.read("clip_spans").num_rows == 3 and wh.read("feature_shards").num_rows == 3
    statuses = [r["status"] for r in wh.read("cue_outcomes").to_pylist()]
    assert statuses.count("aligned") >= len(statuses) - 1
