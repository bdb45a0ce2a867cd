"""Sweeps: a scenario evaluated at many parameter points, on Dask (`cascade sweep`, `sim.sweep`).

points (the design: which points), units (content-addressed work units and the folder that keeps them), tasks
(what a worker computes), cluster (a Dask client: local by default, a scheduler when given), table (one row per
point x engine x variant), frontier (where a variant starts to beat base), study (the whole study, resumable),
report (`cascade report` on a sweep folder).
"""
