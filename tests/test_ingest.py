"""Ingest stages on real media and subtitles, and the refresh flow end to end (incremental, rejects)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.compute as pc
import pytest

from fixtures.librivox import needs_librivox, transcripts, wav
from fixtures.media import tone_after, write_media
from pipeline.corpus import ClipSpec, load_corpus
from pipeline.ingest import IngestConfig, align_batch, clip_row, subtitle_rows
from pipeline.refresh_stages import INGEST_STAGES, RefreshSettings
from pipeline.stage import Reject, run_stages
from warehouse.phones import PHONE_INDEX
from warehouse.store import Warehouse

pytestmark = needs_librivox
UTT = "sense_and_sensibility_01_austen_64kb-0880"


def srt(*cues: tuple[float, float, str]) -> str:
    def t(s: float) -> str:
        return f"00:00:{int(s):02d},{round((s % 1) * 1000):03d}"
    return "".join(f"{i + 1}\n{t(a)} --> {t(b)}\n{text}\n\n" for i, (a, b, text) in enumerate(cues))


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    """Two good clips (real speech, as mp4 with AAC and as wav) and one of each kind of bad input."""
    root = tmp_path / "corpus"
    root.mkdir()
    words = " ".join(transcripts()[UTT])
    shutil.copy(wav(UTT), root / "good_wav.wav")
    (root / "good_wav.en.srt").write_text(srt((0.0, 2.99, f"[Music] JOHN: {words.capitalize()}.")))
    from scipy.signal import resample_poly

    from pipeline.audio import decode_audio

    speech = resample_poly(decode_audio(wav(UTT)), 441, 160).astype("float32")  # AAC at 44.1 kHz, as on YouTube
    write_media(root / "good_mp4.mp4", speech, 44100, video_s=3.0)
    (root / "good_mp4.en.vtt").write_text(f"WEBVTT\n\n00:00:00.000 --> 00:00:02.990\n{words}\n")
    (root / "corrupt.mp4").write_bytes((root / "good_mp4.mp4").read_bytes()[:3000])
    (root / "corrupt.en.srt").write_text(srt((0.0, 1.0, "hello")))
    write_media(root / "silent.mp4", None, video_s=1.0)
    (root / "silent.en.srt").write_text(srt((0.0, 1.0, "hello")))
    shutil.copy(wav(UTT), root / "late.wav")
    (root / "late.en.srt").write_text(srt((0.0, 2.9, words), (5.0, 7.0, "and more")))
    shutil.copy(wav(UTT), root / "music.wav")
    (root / "music.en.srt").write_text(srt((0.0, 2.9, "[Music]"), (0.0, 2.9, "♪ la la ♪")))
    shutil.copy(wav(UTT), root / "binary.wav")
    (root / "binary.en.srt").write_bytes(bytes(range(256)))  # text in no encoding
    shutil.copy(wav(UTT), root / "nosubs.wav")
    write_media(root / "tone.wav", tone_after(0.0, 2.0, 16000), 16000, audio_codec="pcm_s16le")
    (root / "tone.en.srt").write_text(srt((0.0, 0.3, " ".join(["extraordinary"] * 12))))
    return root


EXPECTED_REJECTS = {
    ("corrupt", "clips"): "bad_media",
    ("silent", "align"): "no_audio",
    ("music", "subtitles"): "no_speakable_cues",
    ("binary", "subtitles"): "subtitles_not_utf8",
    ("nosubs", "subtitles"): "no_subtitles",
    ("tone", "align"): "low_coverage",
}


def run_all(clips: list[ClipSpec], warehouse: Warehouse) -> None:
    """The flow's loop without Prefect: each ingest stage over the clips it still needs, 3 per batch."""
    run_stages(warehouse, clips, INGEST_STAGES, RefreshSettings(warehouse.uri), batch_size=3)


@pytest.fixture(scope="module")
def aligner():
    from pipeline.refresh_stages import worker_aligner

    return worker_aligner("pocketsphinx", IngestConfig().cue_pad_s)


def test_stages_write_rows_and_rejects(corpus: Path, tmp_path: Path, aligner) -> None:
    warehouse = Warehouse(tmp_path / "wh")
    run_all(load_corpus(corpus), warehouse)
    rejects = {(r["clip_id"], r["stage"]): r["reason"] for r in warehouse.read("rejects").to_pylist()}
    assert rejects == EXPECTED_REJECTS
    phones = warehouse.read("phone_alignments")
    assert sorted(set(phones["clip_id"].to_pylist())) == ["good_mp4", "good_wav", "late"]
    # one bad cue costs that cue: "late" keeps its first cue, its second starts after the audio ends
    outcomes = {(r["clip_id"], r["cue"]): r for r in warehouse.read("cue_outcomes").to_pylist()}
    assert (outcomes["late", 0]["status"], outcomes["late", 1]["status"]) == ("aligned", "failed")
    assert outcomes["late", 1]["reason"] == "past_end" and "5.0-7.0 s" in outcomes["late", 1]["detail"]
    assert outcomes["good_wav", 0]["aligned_words"] == outcomes["good_wav", 0]["caption_words"] == 8
    assert outcomes["tone", 0]["status"] in ("failed", "mismatch")
    tone = next(r for r in warehouse.read("rejects").to_pylist() if r["clip_id"] == "tone")
    assert tone["detail"].startswith("aligned 0 of 12 caption words (0%), below the 50% minimum; cue 0 (0.00-0.30 s)")
    for clip in ("good_mp4", "good_wav"):
        rows = phones.filter(pc.equal(phones["clip_id"], clip)).sort_by("position").to_pylist()
        assert [r["word"] for r in rows[:2]] == ["he", "he"] and [r["phone"] for r in rows[:2]] == ["HH", "IY"]
        assert all(r["phone"] in PHONE_INDEX for r in rows)
        assert {(r["aligner"], r["aligner_version"]) for r in rows} == {("pocketsphinx", aligner.version)}
        assert [r["position"] for r in rows] == list(range(len(rows)))
    # the AAC copy lines up with the WAV original: same phones, same times within a frame or two
    wav_rows = phones.filter(pc.equal(phones["clip_id"], "good_wav")).sort_by("position")
    mp4_rows = phones.filter(pc.equal(phones["clip_id"], "good_mp4")).sort_by("position")
    assert wav_rows["phone"].to_pylist() == mp4_rows["phone"].to_pylist()
    deltas = [abs(a - b) for a, b in zip(wav_rows["start_s"].to_pylist(), mp4_rows["start_s"].to_pylist())]
    # sync: unhandled AAC priming would shift every phone by 23 ms; lossy coding moves a few by frames
    assert sorted(deltas)[len(deltas) // 2] <= 0.01 and max(deltas) <= 0.05
    hist = {r["clip_id"]: r for r in warehouse.read("phoneme_histograms").to_pylist()}
    assert set(hist) == {"good_mp4", "good_wav", "late"}
    assert hist["good_wav"]["n_phones"] == len(wav_rows) == sum(hist["good_wav"]["counts"])
    assert hist["good_wav"]["counts"][PHONE_INDEX["N"]] == wav_rows["phone"].to_pylist().count("N")
    assert (hist["good_wav"]["coverage"], hist["late"]["caption_words"], hist["late"]["coverage"]) == (1.0, 10, 0.8)
    subs = warehouse.read("subtitles").to_pylist()
    good = next(s for s in subs if s["clip_id"] == "good_wav")
    assert good["text"] == "He was not an ill disposed young man." and good["kind"] == "sidecar"

    # re-running changes nothing; an added clip is the only one processed
    versions = warehouse.versions()
    run_all(load_corpus(corpus), warehouse)
    assert warehouse.versions() == versions
    shutil.copy(corpus / "good_wav.wav", corpus / "added.wav")
    shutil.copy(corpus / "good_wav.en.srt", corpus / "added.en.srt")
    run_all(load_corpus(corpus), warehouse)
    assert warehouse.read("phone_alignments").num_rows == 4 * len(wav_rows)
    assert warehouse.read("rejects").num_rows == len(EXPECTED_REJECTS)


def test_stage_functions_directly(corpus: Path, aligner) -> None:
    clips = {c.clip_id: c for c in load_corpus(corpus)}
    rows = subtitle_rows(clips["good_wav"], IngestConfig())
    assert isinstance(rows, list) and rows[0]["text_raw"].startswith("[Music] JOHN:")
    reject = subtitle_rows(clips["nosubs"], IngestConfig())
    assert isinstance(reject, Reject) and "nosubs.wav" in reject.detail
    clip = {"clip_id": "x", "has_audio": True, "video_uri": str(corpus / "corrupt.mp4"), "start_s": 0.0,
            "end_s": None}
    [bad] = align_batch([clip], [rows], aligner, IngestConfig())
    assert bad.clip_id == "x" and bad.rows == {}
    assert bad.reject.reason == "bad_media" and "corrupt.mp4" in bad.reject.detail


def test_a_segment_starting_after_the_media_ends_is_rejected_by_the_clips_stage(tmp_path: Path) -> None:
    media = write_media(tmp_path / "short.mp4", tone_after(0.0, 2.0, 44100), 44100, video_s=2.0)
    reject = clip_row(ClipSpec("late", str(media), 3.0, None, media=media), IngestConfig())
    # Before: a row with start_s 3.0 and end_s 2.0, on which the align stage raised a bare ValueError.
    assert isinstance(reject, Reject) and (reject.stage, reject.reason) == ("clips", "bad_media")
    assert "short.mp4" in reject.detail and "starts at 3.00 s" in reject.detail
    row = clip_row(ClipSpec("inside", str(media), 1.0, None, media=media), IngestConfig())
    assert isinstance(row, dict) and row["start_s"] == 1.0 and row["end_s"] > 1.9


@pytest.mark.integration
def test_refresh_flow_and_cli(corpus: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from prefect.testing.utilities import prefect_test_harness

    from talkface_cli import cli

    for name in ("corrupt", "silent", "late", "music", "binary", "tone"):
        for path in corpus.glob(f"{name}.*"):
            path.unlink()
    args = ["refresh", "--corpus", str(corpus), "--warehouse", str(tmp_path / "wh"),
            "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    with prefect_test_harness():
        first = CliRunner().invoke(cli, args)
        second = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "clips in: 3" in first.output and "aligned: 2" in first.output
    assert "subtitles: no_subtitles: 1" in first.output
    assert second.output.splitlines()[-6:] == first.output.splitlines()[-6:]
    assert Warehouse(tmp_path / "wh").read("phoneme_histograms").num_rows == 2


def test_two_pages_with_the_same_file_name_keep_their_own_subtitles(tmp_path: Path) -> None:
    """Two talks served as '.../a/index.html' and '.../b/index.html': each clip gets its own page's track,
    not the one fetched first for the other (their cached fetches were both named 'index.html')."""
    from fixtures.web import SiteHandler, serve

    for talk, words in (("a", "first talk words"), ("b", "second talk words")):
        (tmp_path / "www" / talk).mkdir(parents=True)
        (tmp_path / "www" / talk / "talk.en.vtt").write_text(f"WEBVTT\n\n00:00:00.500 --> 00:00:02.000\n{words}\n")
        (tmp_path / "www" / talk / "index.html").write_text(
            '<html><body><video><source src="talk.mp4" type="video/mp4">'
            '<track kind="subtitles" srclang="en" src="talk.en.vtt"></video></body></html>')
    config = IngestConfig(cache_dir=tmp_path / "cache")
    with serve(tmp_path / "www", type("Talks", (SiteHandler,), {})) as url:
        texts = {talk: [row["text"] for row in subtitle_rows(ClipSpec(talk, f"{url}/{talk}/index.html"), config)]
                 for talk in "ab"}
    assert texts == {"a": ["first talk words"], "b": ["second talk words"]}
