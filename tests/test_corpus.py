"""Corpus specs: media folders with sidecars, segment lists, VoxCeleb metadata conversion."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from pipeline.corpus import (
    ClipSpec,
    CorpusError,
    load_corpus,
    parse_voxceleb_txt,
    read_segment_list,
    safe_id,
    write_segment_list,
)  # fmt: skip

# The layout of the official VoxCeleb1 (normalised box) and VoxCeleb2 (pixel box) metadata files.
VOX1 = ("Identity  : \tid10001\nReference : \t1zcIwhmdeo4\nOffset    : \t1\nFV Conf   : \t16.647\t(1)\n"
        "ASD Conf  : \t4.465\n\nFRAME \tX \tY \tW \tH \n000245 \t0.34 \t0.15 \t0.17 \t0.30 \n"
        "000246 \t0.34 \t0.15 \t0.17 \t0.30 \n000444 \t0.35 \t0.15 \t0.17 \t0.30 \n")
VOX2 = ("Identity  : \tid00012\nReference : \t21Uxsk56VDQ\nOffset    : \t1\nFV Conf   : \t17.734\t(1)\n"
        "ASD Conf  : \t5.869\n\nFRAME \tX \tY \tW \tH \n000100 \t271 \t97 \t128 \t128 \n"
        "000300 \t270 \t96 \t130 \t130 \n")


def test_media_folder_with_sidecars(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("My Talk #1.mp4", "My Talk #1.en.vtt", "sub/b.wav", "sub/b.srt", "notes.txt"):
        (tmp_path / name).touch()
    clips = load_corpus(tmp_path)
    assert [(c.clip_id, c.media.name, c.subtitles.name) for c in clips] == [
        ("My_Talk_1", "My Talk #1.mp4", "My Talk #1.en.vtt"), ("b", "b.wav", "b.srt")]
    assert not clips[0].is_remote


def test_duplicate_stems_and_empty_folders_are_errors(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no media files"):
        load_corpus(tmp_path)
    (tmp_path / "a.mp4").touch()
    (tmp_path / "a.wav").touch()
    with pytest.raises(CorpusError, match="both give clip id 'a'"):
        load_corpus(tmp_path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_segment_list_round_trip(tmp_path: Path, suffix: str) -> None:
    (tmp_path / "v.mp4").touch()
    (tmp_path / "v.en.srt").touch()
    clips = [ClipSpec("a", "dQw4w9WgXcQ", 1.5, 9.0, "id1"), ClipSpec("b", "v.mp4", 0.0, None, None),
             ClipSpec("c", "https://example.org/x.html", 2.0, 3.0, "id2")]
    back = read_segment_list(write_segment_list(clips, tmp_path / f"list{suffix}"))
    assert [(c.clip_id, c.source, c.start_s, c.end_s, c.speaker_id) for c in back] == [
        ("a", "dQw4w9WgXcQ", 1.5, 9.0, "id1"), ("b", "v.mp4", 0.0, None, None),
        ("c", "https://example.org/x.html", 2.0, 3.0, "id2")]
    assert back[0].is_remote and back[2].is_remote
    assert back[1].media == tmp_path / "v.mp4" and back[1].subtitles == tmp_path / "v.en.srt"


@pytest.mark.parametrize(("csv", "message"), [
    ("clip_id,source\na,b\n", "missing columns start_s, end_s, speaker_id"),
    ("clip_id,source,start_s,end_s,speaker_id\na,dQw4w9WgXcQ,5,4,s\n", "clip a: bad segment"),
    ("clip_id,source,start_s,end_s,speaker_id\na,missing.mp4,0,4,s\n", "clip a: media file .*missing.mp4"),
    ("clip_id,source,start_s,end_s,speaker_id\na,dQw4w9WgXcQ,0,4,s\na,dQw4w9WgXcQ,4,8,s\n", "appears twice"),
    ("clip_id,source,start_s,end_s,speaker_id\na,dQw4w9WgXcQ,0,,s\nb,dQw4w9WgXcQ,1:30,2:00,s\n",
     "clip b: start_s='1:30' is not a number of seconds"),
])  # fmt: skip
def test_bad_segment_lists_name_the_file(tmp_path: Path, csv: str, message: str) -> None:
    path = tmp_path / "segments.csv"
    path.write_text(csv)
    with pytest.raises(CorpusError, match=message) as err:
        load_corpus(path)
    assert "segments.csv" in str(err.value)


def test_voxceleb_metadata_become_segments(tmp_path: Path) -> None:
    for rel, text in (("id10001/1zcIwhmdeo4/00001.txt", VOX1), ("id00012/21Uxsk56VDQ/00001.txt", VOX2)):
        (tmp_path / rel).parent.mkdir(parents=True)
        (tmp_path / rel).write_text(text)
    clips = load_corpus(f"voxceleb:{tmp_path}")
    assert [(c.clip_id, c.source, c.speaker_id, c.start_s, c.end_s) for c in clips] == [
        ("id00012_21Uxsk56VDQ_00001", "21Uxsk56VDQ", "id00012", 4.0, 12.04),
        ("id10001_1zcIwhmdeo4_00001", "1zcIwhmdeo4", "id10001", 9.8, 17.8)]
    assert all(c.is_remote for c in clips)
    bad = tmp_path / "bad.txt"
    bad.write_text("hello\n")
    with pytest.raises(CorpusError, match="bad.txt: not a VoxCeleb metadata file"):
        parse_voxceleb_txt(bad)


def test_safe_id_and_unknown_specs(tmp_path: Path) -> None:
    assert safe_id("a b/c:d") == "a_b_c_d"
    with pytest.raises(CorpusError):
        safe_id("///")
    with pytest.raises(CorpusError, match="not a media folder"):
        load_corpus(tmp_path / "nothing.txt")


def test_a_file_named_only_in_other_scripts_gets_an_id_of_its_own(tmp_path: Path) -> None:
    """'日本語のスピーチ.mp4' has no A-Za-z0-9 to keep: it is named by its hash, not an error for the whole
    folder; the same name decomposed (as macOS writes it) gives the same id."""
    for name in ("日本語のスピーチ.mp4", "日本語のスピーチ.en.vtt", "中文.mp4", "talk.mp4"):
        (tmp_path / name).touch()
    clips = {c.media.name: c for c in load_corpus(tmp_path)}
    assert set(clips) == {"日本語のスピーチ.mp4", "中文.mp4", "talk.mp4"}
    speech = clips["日本語のスピーチ.mp4"]
    assert re.fullmatch(r"clip_[0-9a-f]{12}", speech.clip_id) and speech.subtitles.name == "日本語のスピーチ.en.vtt"
    assert clips["中文.mp4"].clip_id != speech.clip_id and clips["talk.mp4"].clip_id == "talk"
    assert safe_id(unicodedata.normalize("NFD", "日本語のスピーチ")) == speech.clip_id
