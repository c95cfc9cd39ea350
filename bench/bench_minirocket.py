"""Benchmark: biosig's minirocket against aeon's MiniRocket (the peer, not a dependency), in one
process, taken in turn, at the same thread count.

    python bench/bench_minirocket.py                        # BasicMotions, 3 rounds, 2 threads
    python bench/bench_minirocket.py --rounds 5 --threads 1
    python bench/bench_minirocket.py --sets BasicMotions SelfRegulationSCP2 --rounds 1 --no-inference

Needs aeon (pip install aeon) beside biosig's requirements. Each round, with seed = the round:
  fit + transform   each set's official train split (data/basicmotions; --sets: the UEA sets cached
                    as ~/.cache/biosig-bench/<Set>/{X,y}_{train,test}.npy): the transform fitted,
                    the train features, the head fitted (biosig: models/ridge.py's closed-form
                    ridge, the penalty by leave-one-out; aeon: MiniRocketClassifier, its ridge
                    classifier with cross-validated penalty), then the test split predicted;
                    seconds and test accuracy
  inference         windows/s of a fitted model predicting batches of 256 windows of (C, F, T) =
                    (32, 1, 256) for --seconds (biosig: the eval forward infer.py's Predictor
                    runs; aeon: predict)
Prints a markdown table: median seconds / windows per second, mean +- std accuracy, and the
ratio biosig / aeon. Not a test: nothing here asserts a speed. Other jobs on the machine slow
both sides alike (they alternate): the load average is printed.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def biosig_fit_predict(x_train, y_train, x_test, seed):
    """fit_data, the ridge head, predict, as train.py/infer.py do -> (seconds, accuracy)."""
    import torch
    from biosig.models import build_model
    from biosig.tasks import Classification
    torch.manual_seed(seed)
    start = time.perf_counter()
    n_classes = int(y_train.max()) + 1
    model = build_model({"name": "minirocket", "n_elec": x_train.shape[1], "n_bands": x_train.shape[2],
                         "n_outputs": n_classes, "n_times": x_train.shape[3], "drop": 0.0})
    x = torch.from_numpy(x_train)
    model.fit_data(x, seed=seed)
    targets, weights = Classification(n_classes).least_squares(torch.from_numpy(y_train))
    model.fit_head(model.head_features(x), targets, weights)
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(x_test)).argmax(1).numpy()
    return time.perf_counter() - start, model, pred


def aeon_fit_predict(x_train, y_train, x_test, seed, threads):
    from aeon.classification.convolution_based import MiniRocketClassifier
    start = time.perf_counter()
    clf = MiniRocketClassifier(random_state=seed, n_jobs=threads)
    clf.fit(x_train[:, :, 0], y_train)
    pred = clf.predict(x_test[:, :, 0])
    return time.perf_counter() - start, clf, pred


def windows_per_s(predict, batch, seconds):
    predict(batch)
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        predict(batch)
        n += len(batch)
    return n / (time.perf_counter() - start)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=3.0, help="inference: seconds per side per round")
    p.add_argument("--data", default=os.path.join(ROOT, "data", "basicmotions"), help="BasicMotions' folder")
    p.add_argument("--sets", nargs="+", metavar="SET", help="UEA sets under --cache instead of --data")
    p.add_argument("--cache", default=os.path.expanduser("~/.cache/biosig-bench"))
    p.add_argument("--no-inference", action="store_true", help="only fit + transform")
    args = p.parse_args(argv)
    from biosig import threads
    threads.quiet_waiting()       # before torch and numba load: waiting threads sleep, not spin (both sides)
    import torch
    torch.set_num_threads(args.threads)
    import numba
    numba.set_num_threads(args.threads)
    folders = [(name, os.path.join(args.cache, name)) for name in args.sets or []] or [("BasicMotions", args.data)]
    fits = []
    for name, folder in folders:
        load = lambda split: np.load(os.path.join(folder, split + ".npy"))    # noqa: E731
        x_train, y_train = load("X_train").astype(np.float32), load("y_train").astype(np.int64)
        x_test, y_test = load("X_test").astype(np.float32), load("y_test").astype(np.int64)
        # numba compiles aeon's functions on their first call: not the fit's time
        few = np.argsort(y_train, kind="stable")[:: max(1, len(y_train) // 8)]   # a few of every class
        aeon_fit_predict(x_train[few], y_train[few], x_test[:1], 0, args.threads)
        biosig_fit_predict(x_train[few], y_train[few], x_test[:1], 0)
        rows = {"biosig": {"fit": [], "acc": []}, "aeon": {"fit": [], "acc": []}}
        for seed in range(args.rounds):
            seconds, _, pred = biosig_fit_predict(x_train, y_train, x_test, seed)
            rows["biosig"]["fit"].append(seconds)
            rows["biosig"]["acc"].append(float((pred == y_test).mean()))
            seconds, _, pred = aeon_fit_predict(x_train, y_train, x_test, seed, args.threads)
            rows["aeon"]["fit"].append(seconds)
            rows["aeon"]["acc"].append(float((pred == y_test).mean()))
        fits.append((f"{name} {tuple(x_train.shape)}", rows, os.getloadavg()[0]))
    print(f"{args.rounds} rounds, {args.threads} thread(s)")
    print("| set (train shape) | side | fit + transform + predict (s, median) | test accuracy (mean +- std) | "
          "biosig / aeon time | load average |")
    print("|---|---|---|---|---|---|")
    for name, rows, load_avg in fits:
        ratio = statistics.median(rows["biosig"]["fit"]) / statistics.median(rows["aeon"]["fit"])
        for side in ("biosig", "aeon"):
            acc = rows[side]["acc"]
            print(f"| {name} | {side} | {statistics.median(rows[side]['fit']):.2f} | {np.mean(acc):.3f} +- "
                  f"{np.std(acc):.3f} | {f'{ratio:.2f}x' if side == 'biosig' else ''} | {load_avg:.2f} |")
    if args.no_inference:
        return
    rng = np.random.default_rng(0)
    infer_train = rng.normal(size=(64, 32, 1, 256)).astype(np.float32)      # windows of (C, F, T) = (32, 1, 256)
    infer_y = np.arange(64) % 2
    batch = rng.normal(size=(256, 32, 1, 256)).astype(np.float32)            # the Predictor's batch
    rates = {"biosig": [], "aeon": []}
    for seed in range(args.rounds):
        _, model, _ = biosig_fit_predict(infer_train, infer_y, infer_train[:1], seed)
        with torch.no_grad():
            rates["biosig"].append(windows_per_s(lambda b: model(b), torch.from_numpy(batch), args.seconds))
        _, clf, _ = aeon_fit_predict(infer_train, infer_y, infer_train[:1], seed, args.threads)
        rates["aeon"].append(windows_per_s(lambda b: clf.predict(b[:, :, 0]), batch, args.seconds))
    med = {side: statistics.median(v) for side, v in rates.items()}
    print(f"\ninference, batches of 256 windows of (C, F, T) = (32, 1, 256), load average {os.getloadavg()[0]:.2f}")
    print("| | windows/s (median) |\n|---|---|")
    for side in ("biosig", "aeon"):
        print(f"| {side} | {med[side]:.0f} |")
    print(f"| biosig / aeon | {med['biosig'] / med['aeon']:.2f}x the rate |")

if __name__ == "__main__":
    main()
