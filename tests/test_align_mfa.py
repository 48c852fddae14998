"""Montreal Forced Aligner backend: output parsing (real MFA files) and the subprocess wrapper."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from pipeline.align import Utterance
from pipeline.align.mfa import (
    MfaAligner, MfaUnavailable, parse_textgrid, phones_from_tiers, read_alignment,
)  # fmt: skip
from pipeline.phonemes import to_cmu39

MFA_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "mfa"
MFA_FILES = sorted(p for p in MFA_FIXTURES.glob("*") if p.suffix.lower() in (".json", ".textgrid"))
needs_mfa_output = pytest.mark.skipif(
    not MFA_FILES, reason="no real MFA output under tests/fixtures/mfa/ yet (the lead adds it)")


@needs_mfa_output
@pytest.mark.parametrize("path", MFA_FILES, ids=[p.name for p in MFA_FILES])
def test_real_mfa_output_parses(path: Path) -> None:
    tiers = read_alignment(path)
    words = [iv for name, ivs in tiers.items() if name.endswith("words") for iv in ivs]
    phones = [iv for name, ivs in tiers.items() if name.endswith("phones") for iv in ivs]
    assert words and phones
    for start, end, _ in phones:
        assert 0 <= start < end
    assert [s for s, _, _ in phones] == sorted(s for s, _, _ in phones)
    labels = {to_cmu39(label) for _, _, label in phones}  # raises on any label outside CMU + silence
    assert len(labels - {None}) >= 5
    end = max(e for _, e, _ in phones)
    aligned = phones_from_tiers(tiers, [Utterance(0, 0.0, end + 1, ())])
    assert all(p.word for p in aligned if to_cmu39(p.phone) is not None)


def phone_labels(tiers: dict) -> list[str]:
    return [label for name, ivs in sorted(tiers.items()) if name.endswith("phones") for *_, label in ivs if label]


@needs_mfa_output
def test_mfa_json_and_textgrid_agree() -> None:
    stems = {p.stem for p in MFA_FILES if p.suffix == ".json"} & {p.stem for p in MFA_FILES if p.suffix != ".json"}
    if not stems:
        pytest.skip("no stem with both JSON and TextGrid MFA output")
    for stem in stems:
        js = read_alignment(MFA_FIXTURES / f"{stem}.json")
        tg = read_alignment(next(p for p in MFA_FILES if p.stem == stem and p.suffix != ".json"))
        assert phone_labels(js) == phone_labels(tg)


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
    assert [l for _, _, l in tiers["words"] if l] == ["say", '"hi"']
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


@needs_mfa_output
def test_aligner_runs_mfa_and_reads_its_output_mocked_mfa_binary(tmp_path: Path, monkeypatch) -> None:
    """A stand-in `mfa` script copies a real MFA output file where `mfa align` would write it."""
    source = MFA_FILES[0]
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

    aligner = MfaAligner(MfaConfig(output_format=source.suffix.lstrip(".").lower()))
    assert aligner.version == "3.0.0-mock"
    tiers = read_alignment(source)
    end = max(e for n, ivs in tiers.items() for _, e, _ in ivs)
    phones = aligner.align("clip", np.zeros(int(end * 16000) + 1, np.float32), 16000,
                           [Utterance(0, 0.0, end + 0.01, ("x",))])
    assert phones == phones_from_tiers(tiers, [Utterance(0, 0.0, end + 0.01, ("x",))])
    assert phones
