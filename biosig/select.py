"""--model auto, the default recipe: pick the model by cross-validation on the training windows,
then train the winner, with its own recipe, on all of them.

Why: no single model wins on every kind of biosignal (bench/bench_cv.py, README "The default
recipe"). On the UEA EEG sets, EEGNet is far ahead on HandMovementDirection and behind on
EyesOpenShut and BasicMotions; MiniRocket is the reverse. Both are cheap on small data, so the
default tries both on the user's own training windows and keeps the better one.

How: FOLDS stratified folds of the training windows (seeded by --seed; with --split group, whole
groups -- subjects -- go to one fold, so a candidate is scored on subjects it never saw); each candidate trains
on FOLDS - 1 of them with its recipe (no validation split: every candidate's recipe trains on
all it is given) and is scored on the held-out fold by the task's `select_by` metric; the mean
over folds decides, ties going to the first candidate (the faster). Test windows are never
seen. Options given on the command line apply to every candidate. The choice, with every fold's
score, goes to summary.json ("selection") and the log. Under torchrun each rank runs the same
selection alone (same data, same seeds) and rank 0's choice is the one every rank takes.
"""
import copy
import time

import numpy as np
import torch

from . import distributed, options, preprocess
from .data import Windows, kfold_indices, on_device
from .loop import EarlyStopping, evaluate, fit
from .models import MODELS, build_model

CANDIDATES = ("minirocket", "eegnet")
# a task that neither candidate can learn (per-frame labels, pretraining) gets the first of these it can
FALLBACK = ("tcn", "eeg2arm")
FOLDS = 3
RECIPE = ("--val-split", "0")       # auto's own: cross-validation replaces the validation split


def fitting(task_cls):
    """The candidates that can learn the task; fewer than two means no cross-validation."""
    return [m for m in CANDIDATES if task_cls.model_problem(MODELS[m]) is None]


def choose_model(args, explicit, data, device, amp, ctx, log):
    """Cross-validate CANDIDATES on data's training windows -> (name, selection record)."""
    from .run import fit_head_to_data, fit_to_data, model_config, training_parts
    task = data["task"]
    candidates = fitting(task)
    if len(candidates) < 2:         # nothing to compare: the one that fits, else the first fallback that does
        chosen = (candidates or [m for m in FALLBACK if task.model_problem(MODELS[m]) is None])[0]
        why = (f"the only one of {', '.join(CANDIDATES)} that learns --task {task.name}" if candidates else
               f"neither {' nor '.join(CANDIDATES)} learns --task {task.name}")
        log(f"auto: {chosen}, with no cross-validation ({why})")
        return chosen, {"candidates": [chosen], "folds": 0, "chosen": chosen}
    train_idx = data["train_idx"]
    grouped = args.split == "group" and data["groups"] is not None
    folds = kfold_indices(task.strata(data["y"][train_idx]), FOLDS, args.seed,
                          groups=data["groups"][train_idx] if grouped else None, where=args.groups or args.x,
                          n=len(train_idx))
    metric = task.select_by
    key = metric[len("val_"):]
    local = distributed.Context(alone=True)     # each rank alone; rank 0's choice is kept below
    scores, seconds = {}, {}
    for name in candidates:
        cand = copy.copy(args)
        cand.model = name
        options.apply_recipe(cand, explicit)
        cand.val_split = 0
        start = time.perf_counter()
        scores[name] = []
        for tr, held in folds:
            tr, held = train_idx[tr], train_idx[held]
            torch.manual_seed(cand.seed)
            model = build_model(model_config(cand, data["shape"], task.n_outputs))
            spec = preprocess.fitted_spec(data["X"], tr, cand.normalize, cand.standardize)
            train_set = on_device(Windows(data["X"], data["y"], tr), device, cand.workers)
            fit_to_data(model, train_set, spec, cand.seed)
            net = task.network(model, data["shape"]).to(device)
            fit_head_to_data(model, task, train_set, spec, local, device)
            fixed = getattr(model, "fixed_parameters", None)
            optimizer, scheduler, scaler, _ = training_parts(net, cand, "min", device, amp)
            fit(net, task, train_set, None, optimizer, scheduler, scaler, EarlyStopping("min"), args=cand,
                monitor="train_loss", start_epoch=1, device=device, amp=amp, preprocess_spec=spec, ctx=local,
                on_epoch=lambda *a: None, log=lambda *a, **k: None, frozen=fixed() if fixed is not None else ())
            result = evaluate(net, task, Windows(data["X"], data["y"], held), cand.batch, device=device, amp=amp,
                              preprocess_spec=spec, ctx=local)
            scores[name].append(float(result[key]))
        seconds[name] = round(time.perf_counter() - start, 2)
        log(f"auto: {name} {key}={np.mean(scores[name]):.4f} over {FOLDS} folds of the training windows "
            f"({', '.join(f'{s:.3f}' for s in scores[name])}) in {seconds[name]:.1f}s")
    best = max(candidates, key=lambda n: (np.mean(scores[n]), -candidates.index(n)))
    if ctx.enabled:
        chosen = [best]
        torch.distributed.broadcast_object_list(chosen, src=0)
        best = chosen[0]
    record = {"candidates": candidates, "folds": FOLDS, "metric": key, "scores": scores,
              "seconds": seconds, "chosen": best}
    return best, record
