"""Storage, at the bottom of the house: it imports no other package of the project.

- ``location``: one :class:`~warehouse.location.Location` type for a local path or
  an object-store URI (``s3://...``), reached through ``pyarrow.fs``; the only
  place that asks "is this local?".
- ``tables`` and ``store``: the table schemas and the versioned Delta tables
  (atomic commits, upserts by key, time travel) under one root, local or remote.
- ``features``: the per-clip feature shard format (``<warehouse>/shards/``, names
  relative to the warehouse) and its reader and writer, used by the faces stage,
  training and the test fixtures alike.
- ``manifest``: the training manifest of a selection (its members' shards).
- ``durable`` and ``faults``: whole-or-absent local files, and the named points
  where fault tests kill a process.

Everything above it (``pipeline``, ``selection``, ``training``, ``flows``)
reads and writes through these modules; reports, demo data and selection
records live with ``selection``, which owns what they mean.
"""
