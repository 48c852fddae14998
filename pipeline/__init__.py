"""Corpus preparation: pure per-clip computations, and the one runner that moves them.

- ``stage``: a stage is a record (input tables, written tables, a pure
  ``compute`` over plain records); one runner finds pending clips, reads their
  inputs, computes anywhere (a thread, a Dask worker) and writes in order, with
  rejects in one form.
- ``refresh_stages``: the refresh's five stages (subtitles, clips, align,
  histograms, faces) as that list, and their settings.
- The computations, one job per module: ``corpus``, ``subtitles``,
  ``subtitle_fetch`` and ``fetch_errors`` (why a fetch failed: wait, reject or
  stop), ``audio``, ``align/`` (pocketsphinx and MFA backends),
  ``phonemes``, ``ingest`` (the ingest stages per clip), ``video``, ``faces``,
  ``pose``, ``measure`` (face and pose per frame, or on keyframes), ``cores`` (one free
  core per clip's face tracking), ``spans``, ``crops``, ``mfcc``, ``faces_stage``.
- Commands over them: ``rejects_cli`` (``talkface rejects``: count, list and
  retry the rejects), ``overlay_cli``, and ``face_options`` (the face filter's
  options, shared by ``overlay``, ``refresh`` and ``deploy``).

Depends on ``warehouse`` only; no Prefect here (``flows/`` orchestrates).
"""
