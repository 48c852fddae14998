"""The ``talkface`` umbrella command.

Subcommands are imported only when they run, so ``talkface --help`` stays fast
and a command never pays for another's heavy imports (torch, mediapipe, Prefect).
"""

from __future__ import annotations

import importlib

import click

from cli_contract import run_cli

# name -> "module:attribute" of a click command; later stages add their own.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "select": ("selection.cli:select_samples", "Select a phoneme-balanced subset (same as select-samples)."),
    "report": ("selection.report_cli:report", "Write the HTML histogram report of a selection."),
    "demo-data": ("selection.demo_data_cli:demo_data", "Generate realistic demo phoneme histograms."),
    "tables": ("warehouse.cli:tables", "List the warehouse tables, versions and row counts."),
    "refresh": ("flows.refresh_cli:refresh", "Ingest a corpus: subtitles, alignment, phoneme histograms."),
    "rejects": ("pipeline.rejects_cli:rejects", "Count and list the clips the refresh rejected, and retry them."),
    "train": ("training.cli:train", "Train the talking-face generator on a manifest (CPU or CUDA, torchrun DDP)."),
    "generate": ("training.cli:generate", "Make a talking-face mp4 from a face image and speech."),
    "evaluate": ("training.cli:evaluate", "Movement intensity, PSNR, SSIM and mouth landmark distance of a video."),
    "overlay": ("pipeline.overlay_cli:overlay", "Draw landmarks, head pose and the kept span onto a clip."),
    "demo": ("flows.demo_cli:demo", "The whole pipeline on an offline demo corpus, ending in a generated video."),
    "deploy": ("flows.deploy_cli:deploy", "Deploy to Prefect: scheduled refresh, selection, triggered training."),
}  # fmt: skip


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return None
        module_name, attr = SUBCOMMANDS[cmd_name][0].split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="talkface")
def cli() -> None:
    """Phoneme-balanced talking-face corpora: from videos and subtitles to a
    balanced, pose-filtered training corpus and a trained generator.

    The warehouse location comes from --warehouse or $TALKFACE_WAREHOUSE
    (default ./talkface-warehouse); it may be a folder or an s3:// URI.
    """


def main() -> None:
    raise SystemExit(run_cli(cli, "talkface"))


if __name__ == "__main__":
    main()
