"""The command-line contract, on the installed commands in real processes.

Exit status 0 on success and 2 on bad input, with one line on stderr naming
what was wrong; nothing created by a command that failed; never an abort at
exit; quiet unless -v; -h, --help and --version as every Unix tool has them.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from talkface_cli import SUBCOMMANDS

BIN = Path(sys.executable).parent
RUNS = 8  # the exit abort this guards against hit 3 to 10 runs in 20


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, cwd=cwd, timeout=120)


def one_line_error(done: subprocess.CompletedProcess, prog: str) -> str:
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"{prog}: error: "), done.stderr
    return done.stderr


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from selection.demo_data import demo_histogram_table, demo_histograms
    from warehouse.store import Warehouse

    path = tmp_path_factory.mktemp("cli") / "warehouse"
    Warehouse(path).upsert("phoneme_histograms", demo_histogram_table(demo_histograms(400)))
    return path


@pytest.mark.integration
def test_commands_that_read_tables_never_abort_at_exit(warehouse: Path):
    """deltalake's to_pyarrow_table() made 3-10 of 20 processes abort at exit (delta-rs #2184)."""
    for _ in range(RUNS):
        tables = run("talkface", "tables", "--warehouse", str(warehouse))
        assert tables.returncode == 0 and "rows 400" in tables.stdout, tables.stderr
        bad = run("select-samples", "--warehouse", str(warehouse), "--nmin", "0")
        assert one_line_error(bad, "select-samples") == "select-samples: error: --nmin must be at least 1, got 0\n"
        selected = run("select-samples", "--warehouse", str(warehouse), "--nmin", "20", "--nmax", "100",
                       "--no-bound")
        assert selected.returncode == 0 and not selected.stderr, selected.stderr


def test_refresh_of_a_missing_corpus_is_one_line_and_creates_nothing(tmp_path: Path):
    done = run("talkface", "refresh", "--corpus", "nosuchdir", cwd=tmp_path)
    assert one_line_error(done, "talkface").endswith(
        "Invalid value for --corpus: nosuchdir: not a media folder, a .csv/.parquet segment list or "
        "voxceleb:<folder>\n")
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_log_entry_is_named_and_earlier_versions_still_serve(tmp_path: Path):
    from selection.demo_data import demo_histogram_table, demo_histograms
    from warehouse.store import Warehouse

    store = Warehouse(tmp_path / "warehouse")
    for seed in range(3):
        store.upsert("phoneme_histograms", demo_histogram_table(demo_histograms(200, seed=seed)))
    entry = tmp_path / "warehouse" / "phoneme_histograms" / "_delta_log" / f"{2:020d}.json"
    entry.write_bytes(entry.read_bytes()[:100])  # a torn write

    tables = run("talkface", "tables", "--warehouse", str(store.uri))
    message = one_line_error(tables, "talkface")
    assert message.startswith(f"talkface: error: warehouse {store.uri}, table phoneme_histograms: log entry 2 "
                              f"(_delta_log/{2:020d}.json) is damaged (Kernel error: Json error: ")
    assert message.endswith("); versions 0 to 1 are readable\n")  # the JSON parser's words depend on the cut
    older = run("select-samples", "--warehouse", str(store.uri), "--table-version", "1", "--nmin", "20",
                "--nmax", "100", "--no-bound", "--output", str(tmp_path / "sel.parquet"))
    assert older.returncode == 0, older.stderr
    assert store.read("phoneme_histograms", version=1).num_rows == 200


def test_an_unreachable_object_store_is_one_line_naming_the_warehouse_and_table():
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RUST_LOG"))}
    done = subprocess.run([str(BIN / "talkface"), "tables", "--warehouse", "s3://talkface/nowhere"], env={
        **env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true"},
        capture_output=True, text=True, timeout=120)
    assert one_line_error(done, "talkface").startswith(
        "talkface: error: warehouse s3://talkface/nowhere, table clips: ")


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_every_subcommand_answers_dash_h(command: str):
    done = run("talkface", command, "-h")
    assert done.returncode == 0 and done.stdout.startswith(f"Usage: talkface {command} ")


def test_version_means_the_program_version_and_table_versions_have_their_own_flag():
    from importlib.metadata import version

    for prog in ("talkface", "select-samples"):
        done = run(prog, "--version")
        assert (done.returncode, done.stdout) == (0, f"{prog}, version {version('talkface')}\n")
    assert "--table-version INTEGER" in run("select-samples", "-h").stdout


@pytest.mark.parametrize("verbose, shown", [(0, False), (1, True)])
def test_native_library_lines_are_filtered_from_stderr_unless_verbose(verbose: int, shown: bool):
    """What mediapipe's graph threads write to descriptor 2, bypassing Python's logging."""
    script = textwrap.dedent(f"""
        import os, sys
        from cli_contract import configure_output
        configure_output({verbose})
        os.write(2, b"W0000 00:00:1795691246.149831   14703 inference_feedback_manager.cc:114] Feedback\\n")
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
        os.write(2, b"a native error that matters\\n")
        print("progress 50%", file=sys.stderr)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    lines = done.stderr.splitlines()
    assert "a native error that matters" in lines and "progress 50%" in lines
    assert any("inference_feedback_manager" in line for line in lines) == shown
    assert any("TensorFlow Lite" in line for line in lines) == shown
