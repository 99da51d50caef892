"""Stage: fit SMPL parameters to each person's observations over all their frames at once.

- ``optimize.fit_track``: the fit of one person (first guess, then Adam over the objective);
- ``objective.Objective``: the observations on the device and the weighted loss terms;
- ``terms``: the loss terms as stateless functions; ``dense``: the DensePose term; ``init``: the first guess.
"""
from .optimize import fit_track, posed_fit

__all__ = ["fit_track", "posed_fit"]
