"""Sweeps: train.py run once per point of a grid (or an Optuna search) of its flags, each
trial a subprocess, in parallel, resumable, optionally as a SLURM job array. driver.py runs a
sweep (outdir.py: its directory and lock; collect.py: a job-array task, --collect and the
closing report); grid.py and space.py make the points; flags.py checks them against train.py's options;
trials.py, processes.py and warm.py start and watch the trials; results.py writes the tables
and best.json; cv.py cross-validates; search.py picks what the trials come from; study.py is the
Optuna study, storage.py where it lives (--storage) and workers.py what lets many sweep.py
processes share it; refit.py retrains the best point; slurm.py writes the job array.

May import: leaves, data, tasks, training, report.
"""
