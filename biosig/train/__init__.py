"""Training a model: a run from flags to checkpoint. options.py is train.py's options table;
the run (run.py) reads its inputs (inputs.py), picks the model (auto.py: the default recipe,
--model auto's cross-validation, --model help), builds model and task, fits (loop.py over
batches.py, with schedule.py, augment.py, distributed.py for torchrun), and writes the run
directory (rundir.py), the checkpoint and trackers' logs (trackers.py); resume.py continues a
run, init.py starts one from another checkpoint's weights (--init).

May import: leaves, signals, data, models, tasks, report.
"""
