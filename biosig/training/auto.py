"""--model auto, the default recipe: pick the model by cross-validation on the training windows,
then train the winner, with its own recipe, on all of them.

Why: no single model wins on every kind of biosignal (bench/bench_cv.py, docs/training.md "The default
recipe"). On the UEA EEG sets, EEGNet is far ahead on HandMovementDirection and behind on
EyesOpenShut and BasicMotions; MiniRocket is the reverse; the Riemannian tangent space
(covariance, another kind of feature) ties MiniRocket on EyesOpenShut and FingerMovements. The
default tries the candidates on the user's own training windows and keeps the best.

The candidates, by this same cross-validation on the five benchmark sets' training splits (seeds
0-2, 2026-12-02, every model below a candidate; mean fold accuracy on BasicMotions / EyesOpenShut /
FingerMovements / HandMovementDirection / SelfRegulationSCP2, the last on its 81-window sample):
  minirocket   1.000 / 0.721 / 0.579 / 0.352 / 0.514
  tangent      1.000 / 0.714 / 0.580 / 0.304 / 0.457   kept: within 0.01 of the best on two sets
  eegnet       0.682 / 0.611 / 0.581 / 0.582 / 0.393   kept: far ahead on HandMovementDirection
  multirocket  1.000 / 0.613 / 0.548 / 0.310 / 0.481   left out: below minirocket on every set
  rockethydra  1.000 / 0.578 / 0.555 / 0.319 / 0.461   left out: below minirocket on every set
  hydra        0.975 / 0.508 / 0.534 / 0.294 / 0.440   left out: below minirocket on every set
Each candidate more is one more noisy score to be fooled by, so only those that led somewhere stay.

How: FOLDS stratified folds of the training windows (seeded by --seed; with --split group, whole
groups -- subjects -- go to one fold, so a candidate is scored on subjects it never saw), each
candidate with its recipe (no validation split: every candidate's recipe trains on all it is
given), scored on each held-out fold by the task's `select_by` metric; the highest mean decides,
ties going to the first candidate (the faster). Test windows are never seen. Options given on
the command line apply to every candidate. The choice, every fold's score and the seconds each
candidate took go to summary.json ("selection") and the log. Under torchrun each rank runs the
same selection alone (same data, same seeds) and rank 0's choice is the one every rank takes.

What it costs, bounded whatever N is:
  the sample   selection sees at most SELECT_WINDOWS training windows, SELECT_BYTES of X, and
               GRADIENT_BYTE_EPOCHS over the epochs of the candidate trained by gradient steps
               (EEGNet's folds cost about bytes x epochs: 2.5 MiB at its 100 epochs, --epochs 10 lets
               ten times more in), and no more than an epoch of --limit-train-batches lets a fold
               train on: a seeded draw, stratified by class (each class in proportion, at least
               FOLDS windows of it; under --split group by group, so every subject stays for the
               folds of whole groups), read once and held in memory. The log says what it drew,
               summary.json records it; the winner then trains on every training window.
  closed form  a candidate whose head is solved in closed form (head_windows: MiniRocket's
               ridge) fits its transform once on the sampled windows (fit_data: biases, the
               features' mean and std -- unsupervised, so they see every sampled window,
               held-out folds included, but never a label), computes every sampled window's
               head features once, and per fold only solves its head on the fold's training
               features (the model's own fit_head, class weights as the task's least_squares
               gives them) and scores the held-out features: seconds, not a retraining per fold.
  the race     a candidate trained by gradient steps (EEGNet, 100 epochs) runs its folds one at a
               time after the closed-form ones, and stops as soon as its mean is decided against
               the best mean so far (race()). Accuracy on n held-out windows is a proportion whose
               standard error is at most 0.5 / sqrt(n); the mean of the folds not yet run differs
               from the mean of those run by at most Z = 2 such errors (of both parts) but for a
               ~2 % chance, and weighs (folds left) / FOLDS in the final mean. When even that
               optimistic (or pessimistic) rest leaves the candidate below (or above) the best
               mean, the folds left would not change the choice, and are not run. A wrong call needs a
               2-sigma fluke, and then the two candidates differ by little. Successive halving over
               the epochs was the other way; it scores a model after a fraction of its schedule,
               which says little of where a cosine schedule ends. Metrics that are not a
               proportion of windows (r2 for regression) run every fold.
"""
import math
import time

import numpy as np
import torch

from . import distributed
from .build import fit_head_to_data, fit_to_data, head_data, model_config, training_parts
from .. import normalize
from ..data import kfold_indices
from .batches import Windows, on_device
from ..errors import UserError
from .loop import EarlyStopping, evaluate, fit, limit_batches
from ..models import MODELS, build_model
from .recipe import CANDIDATES, FOLDS, RECIPE, fitting, with_recipe  # noqa: F401 (CANDIDATES, FOLDS: read from here too)

# a task that no candidate can learn (per-frame labels, pretraining) gets the first of these it can
FALLBACK = ("tcn", "eeg2arm")
SELECT_WINDOWS = 2000               # training windows the selection samples at most
# and bytes of X, held in memory and transformed once (MiniRocket: 71 s for 252 MB of (32, 4, 256)
# windows on 2 loaded cores; 128 MiB is 1,024 such windows)
SELECT_BYTES = 128 << 20
# and bytes x epochs of a candidate trained by gradient steps, whose folds cost about that: 2.5 MiB at
# EEGNet's 100 epochs is 81 of SelfRegulationSCP2's 200 windows (its 3 folds: 125 s on 2 cores shared
# at load 4-5) and every window of the other four UEA sets
GRADIENT_BYTE_EPOCHS = 250 << 20
Z = 2.0                             # the race's margin, in standard errors
PROPORTIONS = ("acc",)              # select_by metrics that are a proportion of held-out windows


def sample_size(flags, n, window_bytes, epochs):
    """How many of the n training windows the selection draws: at most SELECT_WINDOWS, SELECT_BYTES
    of X, GRADIENT_BYTE_EPOCHS over the most `epochs` a candidate trains by gradient steps (0: none
    does), and, under --limit-train-batches, what an epoch of a fold's training lets through."""
    cap = min(SELECT_WINDOWS, SELECT_BYTES // max(1, window_bytes))
    if epochs:
        cap = min(cap, GRADIENT_BYTE_EPOCHS // (epochs * max(1, window_bytes)))
    if flags.limit_train_batches is not None:
        fold_train = n * (FOLDS - 1) // FOLDS
        per_epoch = limit_batches(flags.limit_train_batches, math.ceil(fold_train / flags.batch)) * flags.batch
        cap = min(cap, math.ceil(per_epoch * FOLDS / (FOLDS - 1)))
    return min(n, max(cap, 2 * FOLDS))


def stratified_sample(strata, size, seed):
    """`size` of len(strata) windows, seeded: each stratum (class) in proportion (largest
    remainders), at least min(its windows, FOLDS) of each (if size allows); strata None: at random.
    -> sorted positions (size,)."""
    n = len(strata) if strata is not None else size
    rng = np.random.default_rng(seed)
    if strata is None:
        return np.sort(rng.choice(n, size, replace=False))
    labels, counts = np.unique(strata, return_counts=True)
    floor = np.minimum(counts, min(FOLDS, size // len(labels)))
    share = floor + (size - floor.sum()) * (counts - floor) / max(1, (counts - floor).sum())
    take = np.floor(share).astype(np.int64)
    for i in np.argsort(-(share - take), kind="stable")[: size - take.sum()]:
        take[i] += 1
    picks = [rng.choice(np.flatnonzero(strata == c), k, replace=False) for c, k in zip(labels, take)]
    return np.sort(np.concatenate(picks))


def race(scores, held, n, bar):
    """A gradient candidate after some of its folds: "behind" when its mean cannot rise to `bar`
    (the best mean so far) unless the folds left beat its folds so far by more than Z standard
    errors, "ahead" when it cannot fall to it, else None. scores: its fold accuracies so far; held:
    their held-out windows; n: windows in all folds."""
    seen, folds_left = sum(held), FOLDS - len(scores)
    if folds_left == 0 or bar is None:
        return None
    mean = float(np.mean(scores))
    margin = Z * 0.5 * math.sqrt(1 / seen + 1 / max(1, n - seen)) * folds_left / FOLDS
    return "behind" if mean + margin < bar else "ahead" if mean - margin > bar else None


def closed_form(model, cand, task, windows, folds, key, device):
    """Fold scores of a model whose head is solved in closed form: transform fitted and features
    computed once over `windows` (every sampled window), the head solved per fold by the model's
    fit_head, whose record gives weight (K, D) and bias (K,) on the head features (ridge.py,
    logistic.py), so the held-out outputs are features @ weight.T + bias, as forward gives -> [score]."""
    spec = normalize.fitted_spec(windows.X, windows.indices, cand.normalize, cand.standardize)
    fit_to_data(model, windows, spec, cand.seed)
    model.to(device)
    feats, targets = head_data(model, task, windows, spec, distributed.Context(alone=True), device)
    solve_on = device if device.type != "mps" else torch.device("cpu")     # MPS has no float64
    feats = feats.to(solve_on)
    least, weights = task.least_squares(targets.to(solve_on))
    scores = []
    for tr, held in folds:
        tr, held = torch.as_tensor(tr, device=feats.device), torch.as_tensor(held, device=feats.device)
        solved = model.fit_head(feats[tr], least[tr], None if weights is None else weights[tr])
        outputs = feats[held].double() @ solved["weight"].T + solved["bias"]         # what forward gives
        scores.append(float(task.report(outputs.float().cpu().numpy(), targets[held].cpu().numpy())[key]))
    return scores


def gradient_fold(cand, task, X, y, tr, held, data, device, amp, local):
    """One fold of a candidate trained by its recipe's epochs -> its held-out metrics."""
    torch.manual_seed(cand.seed)
    model = build_model(model_config(cand, data["shape"], task.n_outputs))
    spec = normalize.fitted_spec(X, tr, cand.normalize, cand.standardize)
    train_set = on_device(Windows(X, y, tr), device, cand.workers)
    fit_to_data(model, train_set, spec, cand.seed)
    net = task.network(model, data["shape"]).to(device)
    fit_head_to_data(model, task, train_set, spec, local, device)
    fixed = getattr(model, "fixed_parameters", None)
    optimizer, scheduler, scaler, _ = training_parts(net, cand, "min", device, amp)
    fit(net, task, train_set, None, optimizer, scheduler, scaler, EarlyStopping("min"), args=cand,
        monitor="train_loss", start_epoch=1, device=device, amp=amp, preprocess_spec=spec, ctx=local,
        on_epoch=lambda *a: None, log=lambda *a, **k: None, frozen=fixed() if fixed is not None else ())
    return evaluate(net, task, Windows(X, y, held), cand.batch, device=device, amp=amp, preprocess_spec=spec,
                    ctx=local)


def score_line(name, key, scores, seconds, closed, stopped):
    """The log's line for one candidate's cross-validation."""
    folds = f"{len(scores)} folds" if len(scores) == FOLDS else f"{len(scores)} of {FOLDS} folds"
    line = (f"auto: {name} {key}={np.mean(scores):.4f} over {folds} of the training windows "
            f"({', '.join(f'{s:.3f}' for s in scores)}) in {seconds:.1f}s")
    if closed:
        line += " (head solved per fold)"
    if stopped:
        where = "below" if stopped["verdict"] == "behind" else "above"
        line += f"; stopped: {where} the best mean {stopped['bar']:.4f} by more than the folds left could move it"
    return line


def too_short(name, flags, data, log):
    """Why candidate `name` cannot take the training windows (its input_problem), said in the log,
    or None."""
    cand = flags.with_(model=name)
    model = build_model(model_config(cand, data["shape"], data["task"].n_outputs))
    problem = model.input_problem(*data["shape"][1:])
    if problem:
        log(f"auto: {name} left out ({problem})")
    return problem


def recipes_of(candidates, flags, explicit, data, n):
    """Each candidate's options (its recipe under the command line's) and, for those whose head is
    solved in closed form from up to n training windows, the model -> (recipes, closed)."""
    task = data["task"]
    probe = Windows(data["X"], data["y"], data["train_idx"][:1]).read(np.arange(1))
    recipes, closed = {}, {}
    for name in candidates:
        cand = with_recipe(flags.with_(model=name), explicit)[0].with_(val_split=0)
        recipes[name] = cand
        model = build_model(model_config(cand, data["shape"], task.n_outputs))
        solves = getattr(model, "head_windows", None)
        if solves is not None and solves(n) and task.least_squares(task.batch(*probe)[1]) is not None:
            closed[name] = model
    return recipes, closed


def selection_sample(flags, data, size, log):
    """`size` of data's training windows, read once (sorted rows) and held in memory when fewer than
    all: by group under --split group (every subject kept, for the folds of whole groups), else by
    class. -> (how, X, y, positions in X, their groups or None)."""
    task, train_idx = data["task"], data["train_idx"]
    grouped = flags.split == "group" and data["groups"] is not None
    if size >= len(train_idx):
        return "all", data["X"], data["y"], train_idx, data["groups"][train_idx] if grouped else None
    strata = (data["groups"][train_idx] if grouped else
              task.strata(data["y"][train_idx]) if data["y"] is not None else None)
    how = "stratified by group" if grouped else "stratified" if strata is not None else "at random"
    rows = train_idx[stratified_sample(strata, size, flags.seed)]
    X = np.ascontiguousarray(data["X"][rows])
    y = data["y"][rows] if data["y"] is not None else None
    groups = data["groups"][rows] if grouped else None
    log(f"auto: selecting on {size:,} of {len(train_idx):,} training windows ({how})")
    return how, X, y, np.arange(size), groups


def choose_model(flags, explicit, data, device, amp, ctx, log):
    """Cross-validate CANDIDATES on (a sample of) data's training windows -> (name, selection record)."""
    task = data["task"]
    learn = fitting(task)
    candidates = [m for m in learn if not too_short(m, flags, data, log)]
    if len(candidates) < 2:         # nothing to compare: the one that fits, else the first fallback that does
        chosen = candidates[0] if candidates else next(
            (m for m in FALLBACK if task.model_problem(MODELS[m]) is None and not too_short(m, flags, data, log)), None)
        if chosen is None:
            raise UserError(f"no model of --model auto ({', '.join(CANDIDATES + FALLBACK)}) can take windows of "
                            f"T={data['shape'][-1]} frames for --task {task.name}: give --model NAME")
        why = (f"the only one of {', '.join(CANDIDATES)} that takes these windows for --task {task.name}"
               if candidates else f"none of {', '.join(CANDIDATES)} learns --task {task.name}" if not learn
               else f"none of {', '.join(learn)} takes windows of T={data['shape'][-1]} frames")
        log(f"auto: {chosen}, with no cross-validation ({why})")
        return chosen, {"candidates": [chosen], "folds": 0, "chosen": chosen}
    started = time.perf_counter()
    train_idx = data["train_idx"]
    # head_windows(n) holds up to a size: what holds for every sampled window holds for a fold's share
    recipes, closed = recipes_of(candidates, flags, explicit, data, min(len(train_idx), SELECT_WINDOWS))
    epochs = max((recipes[m].epochs for m in candidates if m not in closed), default=0)
    size = sample_size(flags, len(train_idx), data["X"][0].nbytes, epochs)
    how, X, y, idx, groups = selection_sample(flags, data, size, log)
    folds = kfold_indices(task.strata(y[idx]) if y is not None else None, FOLDS, flags.seed, groups=groups,
                          where=flags.groups or flags.x, n=len(idx))
    rel_folds = folds                           # positions in idx: rows of a closed-form candidate's features
    folds = [(idx[tr], idx[held]) for tr, held in folds]     # positions in X
    key = task.select_by[len("val_"):]
    local = distributed.Context(alone=True)     # each rank alone; rank 0's choice is kept below
    scores, seconds, stopped = {}, {}, {}
    # the closed-form candidates first: they cost little and set the bar the others race
    for name in sorted(candidates, key=lambda m: m not in closed):
        cand, start = recipes[name], time.perf_counter()
        if name in closed:
            scores[name] = closed_form(closed[name], cand, task, Windows(X, y, idx), rel_folds, key, device)
        else:
            bar = max((np.mean(s) for s in scores.values()), default=None)
            scores[name], held_n = [], []
            for tr, held in folds:
                result = gradient_fold(cand, task, X, y, tr, held, data, device, amp, local)
                scores[name].append(float(result[key]))
                held_n.append(len(held))
                verdict = race(scores[name], held_n, len(idx), bar) if key in PROPORTIONS else None
                if verdict:
                    stopped[name] = {"after_folds": len(scores[name]), "verdict": verdict, "bar": round(bar, 4)}
                    break
        seconds[name] = round(time.perf_counter() - start, 2)
        log(score_line(name, key, scores[name], seconds[name], name in closed, stopped.get(name)))
    best = max(candidates, key=lambda n: (np.mean(scores[n]), -candidates.index(n)))
    if ctx.enabled:
        chosen = [best]
        torch.distributed.broadcast_object_list(chosen, src=0)
        best = chosen[0]
    record = {"candidates": candidates, "folds": FOLDS, "metric": key, "scores": scores,
              "closed_form": [n for n in candidates if n in closed], "stopped": stopped,
              "sample": {"windows": len(idx), "of": len(train_idx), "how": how},
              "seconds": seconds, "seconds_total": round(time.perf_counter() - started, 2), "chosen": best}
    return best, record
