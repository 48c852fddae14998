"""pocketsphinx alignment on real LibriVox speech: pronunciations, times, chunking, failures."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from fixtures.librivox import needs_librivox, transcripts, wav
from pipeline.align import AlignmentError, Utterance, make_aligner
from pipeline.align.base import AlignedPhone
from pipeline.align.g2p import Pronouncer, strip_stress
from pipeline.audio import decode_audio
from pipeline.phonemes import to_cmu39

pytestmark = needs_librivox


@pytest.fixture(scope="module")
def pronouncer(tmp_path_factory: pytest.TempPathFactory) -> Pronouncer:
    return Pronouncer(tmp_path_factory.mktemp("nltk_data"))


@pytest.fixture(scope="module")
def aligner(pronouncer: Pronouncer):
    from pipeline.align.sphinx import SphinxAligner

    return SphinxAligner(pronouncer=pronouncer)


@pytest.fixture(scope="module")
def dictionary() -> dict[str, set[tuple[str, ...]]]:
    import pocketsphinx

    prons: dict[str, set[tuple[str, ...]]] = {}
    path = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    for line in path.read_text().splitlines():
        word, *phones = line.split()
        prons.setdefault(re.sub(r"\(\d+\)$", "", word), set()).add(tuple(phones))
    return prons


def words_and_phones(phones) -> list[tuple[str, tuple[str, ...]]]:
    """(word, phones) per aligned word, silence dropped; a word ends where the next starts."""
    out: list[tuple[str, list[str]]] = []
    last_end = None
    for p in phones:
        if to_cmu39(p.phone) is None:
            last_end = None
            continue
        if not out or p.word != out[-1][0] or last_end is None or p.start_s != last_end or p.phone == "_":
            out.append((p.word, []))
        out[-1][1].append(p.phone)
        last_end = p.end_s
    return [(w, tuple(ph)) for w, ph in out]


@pytest.mark.parametrize("utt", sorted(transcripts()))
def test_librivox_phones_match_dictionary(utt: str, aligner, dictionary) -> None:
    words = transcripts()[utt]
    audio = decode_audio(wav(utt))
    phones = aligner.align(utt, audio, 16000, [Utterance(0, 0.0, len(audio) / 16000, words)]).phones
    spoken = [p for p in phones if to_cmu39(p.phone) is not None]
    # every transcript word is aligned, in order, with one of its dictionary pronunciations
    seen = [w for w, _ in words_and_phones(phones)]
    assert seen == list(words)
    joined = {w: ph for w, ph in words_and_phones(phones)}
    for word, prons in joined.items():
        assert prons in dictionary[word], word
    starts = [p.start_s for p in phones]
    assert starts == sorted(starts)
    assert all(p.end_s > p.start_s for p in phones)
    assert phones[0].start_s >= 0 and phones[-1].end_s <= len(audio) / 16000 + 0.011
    assert len(spoken) >= 2 * len(words)
    assert {p.cue for p in phones} == {0}


def test_cue_offsets_are_clip_times(aligner) -> None:
    utt = "sense_and_sensibility_01_austen_64kb-0880"
    audio = decode_audio(wav(utt))
    pad = np.zeros(16000, np.float32)  # one second of silence before the speech
    shifted = aligner.align("c", np.concatenate([pad, audio]), 16000,
                            [Utterance(3, 1.0, 1.0 + len(audio) / 16000, transcripts()[utt])]).phones
    plain = aligner.align("c", audio, 16000, [Utterance(3, 0.0, len(audio) / 16000, transcripts()[utt])]).phones
    assert [p.phone for p in shifted] == [p.phone for p in plain]
    # pocketsphinx carries its cepstral-mean estimate across utterances: boundaries may move a frame or two
    np.testing.assert_allclose([p.start_s - 1.0 for p in shifted], [p.start_s for p in plain], atol=0.03)
    assert {p.cue for p in shifted} == {3}


def test_out_of_vocabulary_word_gets_g2p_pronunciation(aligner, pronouncer) -> None:
    utt = "sense_and_sensibility_01_austen_64kb-0880"
    words = tuple("dizposed" if w == "disposed" else w for w in transcripts()[utt])
    audio = decode_audio(wav(utt))
    phones = aligner.align("oov", audio, 16000, [Utterance(0, 0.0, len(audio) / 16000, words)]).phones
    oov = [p.phone for p in phones if p.word == "dizposed"]
    assert tuple(oov) == strip_stress(pronouncer.pronounce("dizposed"))
    assert oov[:2] == ["D", "IH"] and "P" in oov


def test_utterance_outside_audio_is_an_alignment_error(aligner) -> None:
    audio = np.zeros(16000, np.float32)
    with pytest.raises(AlignmentError, match=r"clip c cue 2 .*outside the audio"):
        aligner.align("c", audio, 16000, [Utterance(2, 0.5, 3.0, ("hello",))])


def test_unalignable_text_fails_its_cue_not_the_call(aligner) -> None:
    audio = np.zeros(8000, np.float32)  # half a second of silence cannot hold 40 words
    result = aligner.align("c", audio, 16000, [Utterance(0, 0.0, 0.5, ("hello",) * 40)])
    assert result.phones == [] and result.coverage == 0.0
    (outcome,) = result.outcomes
    assert outcome.status in ("failed", "mismatch") and outcome.detail.startswith("cue 0 (0.00-0.50 s): ")
    assert outcome.rungs[0] == "window" and outcome.rungs[-1] == "skip"


def test_make_aligner_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="pocketsphinx, mfa"):
        make_aligner("p2fa")


@pytest.mark.integration
def test_sixty_seconds_of_continuous_speech_aligns_in_chunks(aligner, caplog) -> None:
    utts = sorted(transcripts())
    audio = np.concatenate([decode_audio(wav(u)) for u in utts] * 3)
    words = tuple(w for _ in range(3) for u in utts for w in transcripts()[u])
    duration = len(audio) / 16000
    assert duration > 60
    with caplog.at_level("DEBUG", logger="pipeline.align.sphinx"):
        phones = aligner.align("long", audio, 16000, [Utterance(0, 0.0, duration, words)]).phones
    assert sum("chunk" in r.message for r in caplog.records) >= 5
    aligned_words = [w for w, _ in words_and_phones(phones)]
    assert len(aligned_words) >= len(words) - 6
    starts = [p.start_s for p in phones]
    assert starts == sorted(starts) and phones[-1].end_s <= duration + 0.011
    # the last word is where the last clip's last word is: "himself" in the final 1.5 s
    assert phones[-1].word in ("himself", "<sil>", "</s>")
    himself = [p for p in phones if p.word == "himself"]
    assert duration - 1.5 < himself[-1].end_s <= duration


def _placed(word_scores: list[float]) -> list[tuple[int, AlignedPhone]]:
    """One 100 ms phone per word, scoring ``word_scores[i]`` per frame: what a rung placed."""
    return [(i, AlignedPhone(-1, f"w{i}", "AH", 0.1 * i, 0.1 * (i + 1), score))
            for i, score in enumerate(word_scores)]


@pytest.mark.parametrize(("scores", "ends"), [
    ([-17.0] * 10, True),  # a good average
    ([-22.0] * 10, True),  # a fair average, every word trusted: spontaneous speech matching its caption
    ([-17.0] * 9 + [-70.0], False),  # the same fair average (-22.3) with a word untrusted: a later rung may place it
    ([-70.0] + [-15.0] * 9, False),  # an untrusted word at an edge: squeezed into a window too short
    ([-13.0] * 8 + [-70.0] + [-13.0], False),  # ... the second word from an edge too
    ([-13.0] * 4 + [-70.0] + [-13.0] * 5, True),  # a good average with a reduced word inside: not the window's fault
    ([-26.0] * 10, False),  # a poor average
])  # fmt: skip
def test_which_placements_end_the_recovery_ladder(scores: list[float], ends: bool) -> None:
    from pipeline.align.sphinx import SphinxAligner

    assert SphinxAligner()._good_enough(_placed(scores), len(scores)) is ends
