"""Training a model: a run from flags to checkpoint. options.py is train.py's options table;
resolve.py turns the parsed flags into one frozen RunConfig (paths, resume, --init, the recipe,
the checks); the run (run.py, a sequence of named phases) reads its inputs (inputs.py), picks the
model (auto.py: the default recipe, --model auto's cross-validation, --model help), builds model,
task and optimizer (build.py), fits (loop.py over batches.py, with schedule.py, augment.py,
distributed.py for torchrun), and writes the run directory, the checkpoint and the summary
(artifacts.py, rundir.py) and trackers' logs (trackers.py); resume.py continues a run, init.py
starts one from another checkpoint's weights (--init). api.py is biosig.train(...), the same run
called from Python (the folder is not called train/, so that importing it never hides that function).

May import: leaves, signals, data, models, tasks, report.
"""
