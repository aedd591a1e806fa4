"""Benchmarks of oneshot, kept outside the installed package (run from the repository root).

Each benchmark is a module with a command line, ``python -m benchmarks.<module> --help``; it
writes its results (JSON, figures and a ``report.md``) into its output folder and never edits
``docs/``: ``python -m benchmarks.publish OUT docs/FILE.md`` copies a report into the docs as a
separate, explicit step. The older scripts (``model_cost.py``, ``pq_speed.py``, ...) also run as
``python benchmarks/<script>.py``.
"""
