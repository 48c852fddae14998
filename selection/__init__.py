"""Phoneme-balanced sample selection: Algorithm 1 of the paper and better methods.

- The selection itself: ``histograms`` (inputs), ``distances``, ``methods``,
  ``ranking``, ``prefixes``, ``oracle`` and ``bounds`` (certified lower bounds),
  ``runner`` (select and record), ``cli`` (``select-samples``).
- Its records and reports: ``records`` (ids, JSON, Parquet, warehouse rows),
  ``recorded`` (a recorded selection read back), ``report``, ``report_summary``
  and ``report_cli`` (the HTML report and its markdown summary), ``demo_data``
  (realistic synthetic histograms for demos and benchmarks).

Depends on ``warehouse`` for storage. Kept light on purpose: numpy, scipy and
pyarrow only (matplotlib for reports, imported when one is drawn), so
``select-samples`` starts fast.
"""
