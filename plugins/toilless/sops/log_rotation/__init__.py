"""Lossless log rotation: the engine behind the ``log_rotation`` SOP DAG. Pure Python, no Airflow import.

Modules, in the order a run uses them:

* :mod:`.settings`: log sets as data (include/config/log_rotation.yaml), validated into
  :class:`.settings.LogSet`.
* :mod:`.paths`: which files a log set may touch (globs under allowed roots; no ``..``, no symlink escapes).
* :mod:`.naming`: archive names this engine makes and recognises (``app.log.20261122T033000Z.1.zst``).
* :mod:`.rotate`: rename + reopen the writer, or copytruncate; waiting until no writer holds the rotated file.
* :mod:`.compress`: compress in independent members on parallel threads through a temporary file, verify each
  member, read the file back by checksum, fsync, then publish.
* :mod:`.retention`: which of our archives are beyond retention (age, count, total size).
* :mod:`.usage`: mount usage, its growth, the largest files and directories.
* :mod:`.engine`: one log set end to end (recover leftovers, rotate, compress, retention, measure),
  crash-safe.
* :mod:`.report`: the Slack report lines.
"""

from __future__ import annotations
