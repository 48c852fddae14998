"""What every command promises: one-line errors with exit status 2, quiet output unless -v.

Kept free of heavy imports: ``select-samples --help`` goes through here.
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import TypeVar

import click

DEBUG_ENV = "TALKFACE_DEBUG"
F = TypeVar("F", bound=Callable[..., object])

# Lines that native libraries write straight to file descriptor 2, which no
# Python logging setting reaches: absl's "W0000 00:00:..." lines from
# mediapipe's graph threads and TFLite's delegate notice.
NATIVE_NOISE = (r"^[IW][0-9]{4} [0-9:.]+ +[0-9]+ [A-Za-z0-9_.]+:[0-9]+\]"
                r"|^INFO: Created TensorFlow Lite"
                r"|^WARNING: All log messages before absl::InitializeLog")


def options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """One decorator applying click ``decorators`` (options, or groups of them made by this) as if stacked
    in the order given, so that ``--help`` lists them in that order."""
    def apply(command: F) -> F:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


def run_cli(command: click.Command, prog_name: str, args: list[str] | None = None) -> int:
    """Run a click command; a user error becomes one line on stderr and exit status 2.

    User errors are click's usage errors and the ``ValueError`` / ``OSError``
    that the library raises for bad input (each message names the file, clip
    or flag). Set ``TALKFACE_DEBUG=1`` to get the traceback instead.

    Quiet defaults, each unless the user set it: delta-rs's Rust crates log
    errors only (``RUST_LOG``; not its credential-probing warnings), and
    Prefect's SDK telemetry, with its first-run notice, is off (``DO_NOT_TRACK``).
    """
    os.environ.setdefault("RUST_LOG", "error")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    try:
        command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.Abort:
        click.echo(f"{prog_name}: aborted", err=True)
        return 1
    except click.ClickException as error:
        click.echo(f"{prog_name}: error: {error.format_message()}", err=True)
        return 2
    except (ValueError, OSError) as error:
        if os.environ.get(DEBUG_ENV):
            raise
        click.echo(f"{prog_name}: error: {error}", err=True)
        return 2
    return 0


verbose_option = click.option(
    "-v", "--verbose", count=True,
    help="-v: info logging and native libraries' lines, -vv: debug. Without it, warnings only.")
"""The ``-v`` of every command that runs the pipeline's libraries; pass its count to :func:`configure_output`."""


def configure_output(verbose: int) -> None:
    """Logging for a command that runs the pipeline: warnings only by default, more with -v.

    Quiet by default also means: Prefect logs no task tracebacks (the command
    prints the error in one line), and native libraries' log lines are
    filtered out of stderr. With ``-v`` all of it is shown.
    """
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)],
                        format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", ["CRITICAL", "INFO", "DEBUG"][min(verbose, 2)])
    # Prefect's embedded API server gets 20 s to start; a busy 2-core machine running
    # two pipelines at once has been seen to need more.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if verbose == 0:
        filter_native_stderr(NATIVE_NOISE)


_native_filter: list[str] = []  # the pattern descriptor 2 is filtered with, once set


def _writes_to_descriptor_2(stream: object) -> bool:
    """Whether ``stream`` is the process's own standard error, not a capture (a test's, a host program's)
    that the filter's replacement of ``sys.stderr`` would bypass."""
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def filter_native_stderr(pattern: str) -> None:
    """Drop lines matching ``pattern`` that native code writes to file descriptor 2.

    Python's own ``sys.stderr`` (progress bars, click, logging) is moved to a
    copy of the original descriptor, so it is untouched and unbuffered by this.
    Descriptor 2 becomes a pipe into ``grep -v``, a separate process: if this
    one aborts, the last native lines (a crash message) still come out. Once
    per process: descriptor 2 is the process's, whichever command asks again.
    """
    grep = shutil.which("grep")
    if grep is None or _native_filter or not _writes_to_descriptor_2(sys.stderr):
        return
    _native_filter.append(pattern)
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    filter_process = subprocess.Popen([grep, "--line-buffered", "-v", "-E", pattern], stdin=read_end,
                                      stdout=original, stderr=original)
    os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)
    sys.stderr = io.TextIOWrapper(io.FileIO(original, "w", closefd=False), line_buffering=True,
                                  errors="backslashreplace")

    def drain() -> None:  # let the filter print what is left before the shell prompt returns
        sys.stderr.flush()
        os.dup2(original, 2)
        try:
            filter_process.wait(timeout=2)
        except subprocess.TimeoutExpired:  # a child process still holds the pipe
            pass

    atexit.register(drain)
