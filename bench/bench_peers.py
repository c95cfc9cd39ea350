"""The peers of bench/bench_accuracy.py, run inside a separate interpreter that has aeon, pyriemann and
braindecode (bench_accuracy.py's --peer-python; biosig never imports any of them). One call trains and
scores one peer on one set for every seed and writes a JSON result:

    PEER_VENV/bin/python bench/bench_peers.py --peer aeon-mrhydra --data ~/.cache/biosig-bench/EyesOpenShut \\
        --out result.json --seeds 0 1 2 [--epochs 100] [--threads 1]

--data holds X_{train,test}.npy (N, C, 1, T) float32 and y_{train,test}.npy (N,) int64; the peers get
(N, C, T). The result is {"acc": [per seed], "train_s": [per seed], "versions", "recipe", "load_avg"}
(load_avg: os.getloadavg() before and after), or {"skipped": why} when the peer's package cannot be
imported, or {"error": line} when it fails (e.g. windows too short for the architecture).

The peers and their settings:
  aeon-minirocket  aeon's MiniRocketClassifier with its defaults (10,000 kernels, ridge classifier with
                   leave-one-out penalty), random_state = seed, float64 input.
  aeon-mrhydra     aeon's MultiRocketHydraClassifier with its defaults (Hydra: 8 kernels x 64 groups, in
                   torch; MultiRocket: 6,250 kernels, 4 pooling operators, on the series and its first
                   difference; ridge classifier), random_state = seed, float64 input.
                   For both aeon peers the training seconds are fit() after an untimed fit on two windows
                   per class that pays numba's one-time compilation (~50 s for MultiRocket).
  pyr-tangent      pyriemann's Covariances(estimator="oas") -> TangentSpace(metric="riemann") -> sklearn's
                   LogisticRegression(C=1.0, max_iter=1000; L2 penalty, lbfgs, no class weights) in one
                   Pipeline, float64 input, no other preprocessing. It has no randomness: every seed gives
                   the same number (the seeds are run anyway, for the same table; std 0).
  bd-eegnet, bd-shallow  braindecode's EEGClassifier (EEGNet / ShallowFBCSPNet) with the recipe of its
                   trialwise decoding tutorial: AdamW, lr 0.0625 * 0.01, weight decay 0 (the tutorial's
                   values for the shallow net; EEGNet gets the same), batch 64, cosine annealing over the
                   epochs, 100 epochs (--epochs), per-channel standardization from the training split; no
                   validation split, the last epoch's model is scored. braindecode drops a last partial
                   batch, so on a training set smaller than 64 windows the batch is the whole set.
torch's threads (braindecode, Hydra) are --threads; numba's come from NUMBA_NUM_THREADS, which
bench_accuracy.py sets with OMP_NUM_THREADS.

A peer environment, apart from biosig's (the CPU torch keeps it small):
    python3 -m venv /tmp/peervenv
    /tmp/peervenv/bin/pip install torch==2.13.0 aeon pyriemann braindecode   # CPU torch: its CPU index
braindecode imports torchaudio, whose PyPI wheel is a CUDA build: with a CPU torch its compiled extension
fails to load ("Could not load this library: .../torchaudio/lib/_torchaudio.so"), and braindecode is
skipped with that note. torchaudio loads as pure Python (all braindecode needs here) once those files are
moved away:
    mkdir /tmp/peervenv/torchaudio-so && mv /tmp/peervenv/lib/python3*/site-packages/torchaudio/lib/*.so /tmp/peervenv/torchaudio-so/
Measured with aeon 1.6.0, pyriemann 0.12, scikit-learn 1.9.1, braindecode 1.8.1, torch 2.13.0+cpu.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

# peer key -> row name (bench_accuracy.py's --models and its table use these)
PEERS = {"aeon-minirocket": "MiniRocket (aeon)", "aeon-mrhydra": "MultiRocket-Hydra (aeon)",
         "pyr-tangent": "tangent space + LR (pyriemann)", "bd-eegnet": "EEGNet (braindecode)",
         "bd-shallow": "ShallowFBCSPNet (braindecode)"}
BRAINDECODE = {"lr": 0.0625 * 0.01, "weight_decay": 0.0, "batch": 64, "epochs": 100}
TANGENT = {"covariances": "oas", "tangent_metric": "riemann", "C": 1.0, "max_iter": 1000}


def setup(peer, threads, epochs, n_train):
    """Imports the peer's package; returns (versions, recipe, make(seed) -> an unfitted classifier,
    float64 input?, standardize input?)."""
    if peer in ("aeon-minirocket", "aeon-mrhydra"):
        import aeon
        from aeon.classification.convolution_based import MiniRocketClassifier, MultiRocketHydraClassifier
        if peer == "aeon-mrhydra":
            import torch   # Hydra's convolutions
            torch.set_num_threads(threads)
        cls = MiniRocketClassifier if peer == "aeon-minirocket" else MultiRocketHydraClassifier
        return ({"aeon": aeon.__version__}, {cls.__name__: "defaults", "random_state": "seed"},
                lambda seed: cls(random_state=seed), True, False)
    if peer == "pyr-tangent":
        import pyriemann
        import sklearn
        from pyriemann.estimation import Covariances
        from pyriemann.tangentspace import TangentSpace
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        def make(seed):
            return make_pipeline(Covariances(estimator=TANGENT["covariances"]),
                                 TangentSpace(metric=TANGENT["tangent_metric"]),
                                 LogisticRegression(C=TANGENT["C"], max_iter=TANGENT["max_iter"]))
        return ({"pyriemann": pyriemann.__version__, "sklearn": sklearn.__version__},
                dict(TANGENT, deterministic=True), make, True, False)
    import braindecode
    import torch
    from braindecode import EEGClassifier
    from braindecode.models import EEGNet, ShallowFBCSPNet
    from skorch.callbacks import LRScheduler
    torch.set_num_threads(threads)
    model_class = EEGNet if peer == "bd-eegnet" else ShallowFBCSPNet
    epochs = epochs or BRAINDECODE["epochs"]
    batch = min(BRAINDECODE["batch"], n_train)   # drop_last: a batch larger than N trains nothing
    recipe = dict(BRAINDECODE, epochs=epochs, batch=batch, model=model_class.__name__, train_split=None,
                  standardize="per channel, from the training split")

    def make(seed):
        torch.manual_seed(seed)     # the module is built (n_chans, n_times, n_outputs from the data) in fit()
        np.random.seed(seed)
        return EEGClassifier(
            model_class, criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.AdamW,
            optimizer__lr=recipe["lr"], optimizer__weight_decay=recipe["weight_decay"], batch_size=batch,
            max_epochs=epochs, train_split=None, device="cpu", verbose=0,
            callbacks=[("lr_scheduler", LRScheduler("CosineAnnealingLR", T_max=max(1, epochs - 1)))])
    return {"braindecode": braindecode.__version__, "torch": torch.__version__}, recipe, make, False, True


def run(args):
    """Every seed of one peer on one set; returns the result dict (see the module docstring)."""
    load_before = [round(x, 2) for x in os.getloadavg()]
    # (N, C, 1, T) -> (N, C, T), the peers' layout
    X_train, X_test = (np.load(os.path.join(args.data, f"X_{s}.npy"))[:, :, 0, :] for s in ("train", "test"))
    y_train, y_test = (np.load(os.path.join(args.data, f"y_{s}.npy")) for s in ("train", "test"))
    try:
        versions, recipe, make, float64, standardize = setup(args.peer, args.threads, args.epochs, len(y_train))
    except Exception as e:    # noqa: BLE001  any import failure means: skipped, with the reason
        return {"skipped": f"cannot import in {sys.executable}: {type(e).__name__}: {str(e).splitlines()[0]}"}
    if float64:
        X_train, X_test = X_train.astype(np.float64), X_test.astype(np.float64)
    if standardize:   # per channel, statistics from the training split only
        mean = X_train.mean(axis=(0, 2), keepdims=True)
        std = X_train.std(axis=(0, 2), keepdims=True) + 1e-8
        X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
    result = {"acc": [], "train_s": [], "versions": versions, "recipe": recipe}
    try:
        if args.peer.startswith("aeon-"):   # numba compiles on the first fit: do that untimed, on two windows per class
            few = np.concatenate([np.flatnonzero(y_train == k)[:2] for k in np.unique(y_train)])
            make(0).fit(X_train[few], y_train[few])
        for seed in args.seeds:
            clf = make(seed)
            start = time.perf_counter()
            clf.fit(X_train, y_train)
            result["train_s"].append(round(time.perf_counter() - start, 3))
            result["acc"].append(float(np.mean(clf.predict(X_test) == y_test)))
    except Exception as e:    # noqa: BLE001  e.g. windows too short for the architecture
        return {"error": f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}", "versions": versions}
    result["load_avg"] = {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]}
    return result


def main():
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peer", required=True, choices=list(PEERS))
    p.add_argument("--data", required=True, help="directory of X_{train,test}.npy and y_{train,test}.npy")
    p.add_argument("--out", required=True, help="where the JSON result is written")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, help=f"braindecode's epochs (default {BRAINDECODE['epochs']})")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args()
    result = run(args)
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
