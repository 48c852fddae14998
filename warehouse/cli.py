"""``talkface tables``: what the warehouse holds."""

from __future__ import annotations

import click

from warehouse.options import warehouse_option
from warehouse.store import Warehouse
from warehouse.tables import TABLES


@click.command()
@warehouse_option
def tables(warehouse: str) -> None:
    """List every table of the warehouse with its latest version and row count."""
    store = Warehouse(warehouse)
    click.echo(f"warehouse: {store.uri}")
    for name in TABLES:
        version = store.version(name)
        if version is None:
            click.echo(f"  {name:20s} (absent)")
        else:
            rows = store.read(name, columns=[TABLES[name].key[0]]).num_rows
            click.echo(f"  {name:20s} version {version:<5d} rows {rows}")
