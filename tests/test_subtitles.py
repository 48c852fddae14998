"""Parsing and cleaning SRT/VTT cues: markup, non-speech, rolling auto captions, segments, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.subtitles import (
    CueConfig,
    SubtitleError,
    clean_text,
    find_sidecar,
    looks_rolling,
    prepare_cues,
    read_cues,
    speakable_words,
)  # fmt: skip

SRT = """1
00:00:01,000 --> 00:00:02,500
<i>JOHN:</i> Hello there, friend.

2
00:00:02,500 --> 00:00:02,510
blink

3
00:00:03,000 --> 00:00:04,000
[Music]

4
00:00:04,000 --> 00:00:06,000
♪ la la la ♪
(applause) We paid 250 dollars.
"""

# How yt-dlp saves YouTube automatic captions: each cue repeats the previous line,
# 10 ms cues bridge them, inline <c> word timings.
AUTO_VTT = """WEBVTT
Kind: captions
Language: en

00:00:00.160 --> 00:00:02.070 align:start position:0%
 
so<00:00:00.480><c> today</c><00:00:00.799><c> we're</c><00:00:01.040><c> talking</c>

00:00:02.070 --> 00:00:02.080 align:start position:0%
so today we're talking
 

00:00:02.080 --> 00:00:04.230 align:start position:0%
so today we're talking
about<00:00:02.480><c> phonemes</c><00:00:03.000><c> and</c><00:00:03.300><c> faces</c>

00:00:04.230 --> 00:00:04.240 align:start position:0%
about phonemes and faces
 

00:00:04.240 --> 00:00:06.000 align:start position:0%
about phonemes and faces
[Music]
"""


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_srt_cues_are_cleaned_and_filtered(tmp_path: Path) -> None:
    cues = prepare_cues(read_cues(write(tmp_path, "a.srt", SRT)))
    assert [(c.index, c.start_s, c.end_s, c.text) for c in cues] == [
        (0, 1.0, 2.5, "Hello there, friend."),
        (1, 4.0, 6.0, "We paid 250 dollars."),
    ]
    assert cues[0].text_raw == "<i>JOHN:</i> Hello there, friend."
    assert speakable_words(cues[1].text) == ("we", "paid", "two", "hundred", "fifty", "dollars")


def test_vtt_times_keep_milliseconds(tmp_path: Path) -> None:
    cues = read_cues(write(tmp_path, "a.vtt", "WEBVTT\n\n00:00:01.750 --> 00:00:03.250\n<v Ann>Hi there\n"))
    assert (cues[0].start_s, cues[0].end_s, cues[0].text) == (1.75, 3.25, "Hi there")


def test_rolling_auto_captions_are_deduplicated(tmp_path: Path) -> None:
    raw = read_cues(write(tmp_path, "auto.en.vtt", AUTO_VTT))
    assert looks_rolling(raw)
    cues = prepare_cues(raw)
    assert [c.text for c in cues] == ["so today we're talking", "about phonemes and faces"]
    assert [(c.start_s, c.end_s) for c in cues] == [(0.16, 2.07), (2.08, 4.23)]
    joined = " ".join(w for c in cues for w in speakable_words(c.text))
    assert joined == "so today we're talking about phonemes and faces"


def test_manual_subtitles_keep_repeated_lines(tmp_path: Path) -> None:
    srt = "1\n00:00:00,000 --> 00:00:01,000\nNo.\n\n2\n00:00:01,000 --> 00:00:02,000\nNo.\n\n" \
          "3\n00:00:02,000 --> 00:00:03,000\nYes.\n"
    cues = prepare_cues(read_cues(write(tmp_path, "m.srt", srt)), config=CueConfig(dedupe=False))
    assert [c.text for c in cues] == ["No.", "No.", "Yes."]


@pytest.mark.parametrize(("raw", "clean"), [
    (">> SPEAKER 1: we went (laughs) home", "we went home"),
    ("- Yes.\n- No, it's 10%.", "Yes. No, it's 10%."),
    ("<font color='#fff'>Well: that is all</font>", "Well: that is all"),
    ("{\\an8}*sighs* okay &amp; fine", "okay & fine"),
    ("♪ singing along ♪", ""),
])  # fmt: skip
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_cues_are_cut_to_the_segment(tmp_path: Path) -> None:
    srt = "".join(f"{i + 1}\n00:00:0{i * 2},000 --> 00:00:0{i * 2 + 2},000\nword{i} here\n\n" for i in range(4))
    cues = prepare_cues(read_cues(write(tmp_path, "s.srt", srt)), start_s=2.2, end_s=7.0)
    # 0-2 is outside; 2-4 loses 10% (kept, shortened); 4-6 inside; 6-8 loses 50% (dropped)
    assert [(c.index, round(c.start_s, 3), round(c.end_s, 3), c.text) for c in cues] == [
        (0, 0.0, 1.8, "word1 here"), (1, 1.8, 3.8, "word2 here")]


@pytest.mark.parametrize(("name", "content", "message"), [
    ("latin1.srt", "1\n00:00:00,000 --> 00:00:01,000\nCafé au lait\n".encode("latin-1"), "not UTF-8"),
    ("empty.vtt", b"", "unparsable VTT|no subtitle cues"),
    ("junk.vtt", b"this is not a subtitle file", "unparsable VTT"),
    ("junk.srt", b"hello\nworld\n", "unparsable SRT"),
    ("notes.txt", b"hi", "not a subtitle file"),
])  # fmt: skip
def test_bad_files_raise_naming_the_file(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SubtitleError, match=message) as err:
        read_cues(path)
    assert name in str(err.value)


def test_find_sidecar_prefers_language_files(tmp_path: Path) -> None:
    media = tmp_path / "talk.mp4"
    media.touch()
    assert find_sidecar(media) is None
    (tmp_path / "talk.srt").touch()
    assert find_sidecar(media) == tmp_path / "talk.srt"
    (tmp_path / "talk.en-US.vtt").touch()
    assert find_sidecar(media) == tmp_path / "talk.en-US.vtt"
    (tmp_path / "talk.en.srt").touch()
    assert find_sidecar(media) == tmp_path / "talk.en.srt"
    (tmp_path / "talk.en.vtt").touch()
    assert find_sidecar(media) == tmp_path / "talk.en.vtt"
