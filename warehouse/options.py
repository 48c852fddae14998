"""Command-line options shared by every command that touches the warehouse."""

from __future__ import annotations

import click

from warehouse.location import WAREHOUSE_ENV, default_warehouse_uri

warehouse_option = click.option(
    "--warehouse",
    default=default_warehouse_uri,
    show_default=f"${WAREHOUSE_ENV} or ./talkface-warehouse",
    help="Warehouse root: a folder or an s3:// URI.",
)
