"""Command-line options shared by every command that touches the warehouse."""

from __future__ import annotations

from pathlib import Path

import click

from warehouse.location import WAREHOUSE_ENV, default_warehouse_uri

warehouse_option = click.option(
    "--warehouse",
    default=default_warehouse_uri,
    show_default=f"${WAREHOUSE_ENV} or ./talkface-warehouse",
    help="Warehouse root: a folder or an s3:// URI.",
)


def refuse_with_input(option: str, value: object, input_path: Path | None) -> None:
    """Refuse an option that only a warehouse read uses when --input is given: it would be ignored.

    Raises:
        click.UsageError: naming both flags.
    """
    if value is not None and input_path is not None:
        raise click.UsageError(f"{option} reads the warehouse; it cannot be used with --input")
