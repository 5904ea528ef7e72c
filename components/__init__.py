"""Reusable UI pieces of the dashboard (they import ``recsys``, never ``pages``).

- :mod:`components.ids`: every component id, one constant each, grouped by page.
- :mod:`components.layout`: navbar, page header, stat card, empty state, error alert.
- :mod:`components.common`: non-visual helpers several pages share (lazy dataset look-ups).
- :mod:`components.jobs`: job progress card and the app-level job polling callback.
- :mod:`components.metrics`: the runs/metrics table (dash-ag-grid), shared by Overview, Runs, Compare.
"""
