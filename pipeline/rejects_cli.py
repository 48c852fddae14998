"""``talkface rejects``: which clips the stages dropped and why, and taking them back.

A stage never looks at a clip it rejected again (:func:`pipeline.stage.pending`),
so a clip rejected for a cause that has since gone (a site that blocked the
fetcher, a yt-dlp that needed an update, a threshold set too tight) stays out
until its reject is forgotten. ``--retry`` does that for exactly the rejects
listed (a Delta commit per stage; the table's history keeps them); the next
``talkface refresh`` of the same corpus then processes those clips again from
that stage on.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import click
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.refresh_stages import STAGES
from warehouse.options import warehouse_option
from warehouse.store import Warehouse

STAGE_NAMES = tuple(stage.name for stage in STAGES)


def matching(rejects: pa.Table, match: dict[str, tuple[str, ...]], since: datetime | None = None) -> pa.Table:
    """The rows of ``rejects`` whose every column named in ``match`` holds one of its values, written at
    ``since`` or later."""
    for column, values in match.items():
        rejects = rejects.filter(pc.is_in(rejects[column], value_set=pa.array(values, pa.string())))
    if since is not None:
        rejects = rejects.filter(pc.greater_equal(rejects["at"], pa.scalar(since, rejects.schema.field("at").type)))
    return rejects


def forget(store: Warehouse, rows: list[dict[str, object]]) -> int:
    """Delete exactly these rejects (by their key, clip and stage), one commit per stage; how many went."""
    by_stage: dict[str, list[str]] = {}
    for row in rows:
        by_stage.setdefault(str(row["stage"]), []).append(str(row["clip_id"]))
    return sum(store.delete("rejects", {"stage": [stage], "clip_id": ids}) for stage, ids in by_stage.items())


def count_lines(rows: list[dict[str, object]]) -> list[str]:
    """``stage: reason  N`` per stage (in run order) and reason, most frequent reason first."""
    counts = Counter((r["stage"], r["reason"]) for r in rows)
    order = {name: i for i, name in enumerate(STAGE_NAMES)}
    ranked = sorted(counts.items(), key=lambda item: (order.get(item[0][0], len(order)), -item[1], item[0][1]))
    width = max((len(f"{stage}: {reason}") for (stage, reason), _ in ranked), default=0)
    return [f"  {f'{stage}: {reason}':{width}s}  {n}" for (stage, reason), n in ranked]


@click.command()
@warehouse_option
@click.option("--stage", "stages", multiple=True, type=click.Choice(STAGE_NAMES),
              help="Only the rejects of this stage (repeatable).")
@click.option("--reason", "reasons", multiple=True, metavar="REASON",
              help="Only the rejects with this reason, as the counts print it (repeatable): fetch_failed, "
                   "low_coverage, no_face, ...")
@click.option("--clip", "clip_ids", multiple=True, metavar="CLIP_ID", help="Only this clip's rejects (repeatable).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]), metavar="UTC_TIME",
              help="Only the rejects written at this time (UTC) or later, e.g. those of a night a site was down: "
                   "2026-11-26 or 2026-11-26T22:00.")
@click.option("--list", "listing", is_flag=True,
              help="Print every matching reject: clip, stage, reason, when (UTC), detail; tab-separated.")
@click.option("--retry", is_flag=True,
              help="Forget the matching rejects: the next refresh of the same corpus processes those clips again "
                   "from the stage that rejected them.")
def rejects(warehouse: str, stages: tuple[str, ...], reasons: tuple[str, ...], clip_ids: tuple[str, ...],
            since: datetime | None, listing: bool, retry: bool) -> None:
    """Count the clips the refresh stages rejected, by stage and reason; list them; retry them.

    \b
    talkface rejects                                   counts by stage and reason
    talkface rejects --reason fetch_failed --list      each fetch failure and why
    talkface rejects --stage subtitles --retry         fetch them all again next refresh
    """
    store = Warehouse(warehouse)
    if store.version("rejects") is None and store.version(STAGE_NAMES[0]) is None:  # a mistyped --warehouse
        raise ValueError(f"{store.uri}: no refresh has run here yet (no rejects or {STAGE_NAMES[0]} table)")
    match = {column: values for column, values in
             (("stage", stages), ("reason", reasons), ("clip_id", clip_ids)) if values}
    since = since.replace(tzinfo=UTC) if since is not None else None
    rows = matching(store.read("rejects"), match, since).to_pylist()
    filters = [f"--{c.removesuffix('_id')} {v}" for c, vs in match.items() for v in vs]
    filters += [f"--since {since:%Y-%m-%dT%H:%M:%S}"] if since is not None else []
    click.echo(f"warehouse: {store.uri}")
    click.echo(f"rejects{' matching ' + ' '.join(filters) if filters else ''}: {len(rows)} "
               f"({len({r['clip_id'] for r in rows})} clips)")
    for line in count_lines(rows):
        click.echo(line)
    if listing:
        for r in rows:
            click.echo(f"{r['clip_id']}\t{r['stage']}\t{r['reason']}\t{r['at']:%Y-%m-%dT%H:%M:%S}\t{r['detail']}")
    if retry and rows:
        click.echo(f"retrying {forget(store, rows)} reject(s): the next refresh of the corpus processes those clips "
                   "again")
