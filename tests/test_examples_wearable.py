"""python -m biosig.examples wearable: wrist PPG (64 Hz) and acceleration (32 Hz) with heart rate and
activity -- its files as documented, seeded, and the structure fusion needs: each modality alone
trains through train.py as written (reading its signal contract), the accelerometer classifying the
activity and the PPG regressing the heart rate well past the mean."""
import json

import numpy as np
import pytest
import torch

from biosig.data.examples import ACTIVITIES, wearable
from biosig.signals import contract
from conftest import run_here

SHAPES = {"ppg": (1, 1, 512), "acc": (3, 1, 256)}
SIGNALS = {"ppg": (64, ["ppg"]), "acc": (32, ["acc_x", "acc_y", "acc_z"])}


@pytest.fixture(scope="module")
def wrist(tmp_path_factory):
    out = tmp_path_factory.mktemp("wrist")
    proc = run_here("biosig.examples", "wearable", out, "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_files_shapes_dtypes_sidecars_and_labels(wrist):
    out, stdout = wrist
    for split in ("", "_test"):
        n = len(np.load(out / f"hr{split}.npy"))
        assert n >= 100
        for name, shape in SHAPES.items():
            x = np.load(out / f"{name}{split}.npy")
            assert x.shape == (n, *shape) and x.dtype == np.float32 and np.isfinite(x).all()
            spec = contract.read(str(out / f"{name}{split}.npy"))
            assert (spec["fs"], spec["channels"]) == SIGNALS[name]
            assert shape[-1] / spec["fs"] == 8.0                   # 8 s windows in both modalities
            assert f"{name}{split}.npy" in stdout and f"{name}{split}.signal.json" in stdout
        hr, act = np.load(out / f"hr{split}.npy"), np.load(out / f"act{split}.npy")
        assert hr.dtype == np.float32 and act.dtype == np.int64
        assert 40 <= hr.min() and hr.max() <= 200                  # bpm
        assert set(np.unique(act)) == {0, 1, 2}
        # the activity shifts the heart rate: rest < walk < run on average
        means = [hr[act == k].mean() for k in range(3)]
        assert means[0] < means[1] < means[2]
    assert json.loads((out / "act_classes.json").read_text()) == ACTIVITIES == ["rest", "walk", "run"]


def test_the_activity_sets_the_motion():
    d = wearable(n=150, n_test=0)
    acc, act = d["acc"][:, :, 0], d["act"]
    magnitude = np.linalg.norm(acc, axis=1)
    assert abs(np.median(magnitude[act == 0]) - 1.0) < 0.05        # at rest: gravity, 1 g
    spread = [magnitude[act == k].std(axis=1).mean() for k in range(3)]
    assert spread[0] < 0.1 < spread[1] < spread[2]                 # still < walking < running
    # the step rate: walk near 2 Hz, run near 3 Hz (the magnitude's strongest frequency, 32 Hz, 8 s)
    spectrum = np.abs(np.fft.rfft(magnitude - magnitude.mean(axis=1, keepdims=True), axis=1))
    peak = spectrum[:, 4:].argmax(axis=1) / 8.0 + 0.5
    assert 1.5 < np.median(peak[act == 1]) < 2.3 < np.median(peak[act == 2]) < 3.1


def _peak_bpm(x, fs, low=40, high=200):
    """(N,) the strongest frequency of each row of x (N, T) between low and high bpm."""
    spectrum = np.abs(np.fft.rfft(x - x.mean(axis=-1, keepdims=True), 4096, axis=-1))
    bpm = np.fft.rfftfreq(4096, 1 / fs) * 60
    band = (bpm > low) & (bpm < high)
    return bpm[band][spectrum[..., band].argmax(axis=-1)], spectrum, bpm


def test_the_steps_mimic_the_pulse_in_the_ppg_and_the_accelerometer_tells_them_apart():
    d = wearable(n=300, n_test=0)
    ppg, acc, hr, act = d["ppg"][:, 0, 0], d["acc"][:, :, 0], d["hr"], d["act"]
    moving = act > 0
    ppg_peak, spectrum, bpm = _peak_bpm(ppg, 64)
    steps = _peak_bpm(np.linalg.norm(acc, axis=1), 32, 60, 200)[0]
    # at rest the PPG's strongest beat is the heart's; while moving it is often the steps'
    assert np.mean(np.abs(ppg_peak - hr)[~moving] < 5) > 0.9
    assert np.mean(np.abs(ppg_peak - steps)[moving] < 5) > 0.8
    assert np.median(np.abs(hr - steps)[moving]) < 20              # the step rates overlap the heart rates
    # masking the accelerometer's step rate leaves the pulse: nearer the heart rate (where the two
    # lie within the mask, or the magnitude's peak is the steps' harmonic, it fails)
    masked = spectrum * (np.abs(bpm - steps[:, None]) > 8)
    band = (bpm > 40) & (bpm < 200)
    fused_peak = bpm[band][masked[:, band].argmax(axis=1)]
    assert np.abs(fused_peak - hr)[moving].mean() < 0.75 * np.abs(ppg_peak - hr)[moving].mean()


def test_the_same_seed_gives_the_same_arrays():
    a, b, c = wearable(n=40, n_test=10, seed=3), wearable(n=40, n_test=10, seed=3), wearable(n=40, n_test=10, seed=4)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name])
    assert not np.array_equal(a["ppg"], c["ppg"])


def _train(out, *args):
    proc = run_here("train.py", *args, "--model", "minirocket", "--epochs", "2", "--save", out / "m.pt",
                    "--run-dir", out / "run", cwd=out)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "run" / "summary.json").read_text())
    return summary["best_metrics"], torch.load(out / "m.pt", map_location="cpu", weights_only=False)


def test_the_accelerometer_alone_classifies_the_activity(wrist, tmp_path):
    out, _ = wrist
    (tmp_path / "acc").mkdir()
    metrics, ckpt = _train(tmp_path / "acc", "--x", out / "acc.npy", "--y", out / "act.npy",
                           "--class-names", out / "act_classes.json")
    assert metrics["acc"] > 0.8                                    # chance: 1/3
    assert ckpt["signal"]["fs"] == 32 and ckpt["signal"]["channels"] == ["acc_x", "acc_y", "acc_z"]
    assert ckpt["task"]["class_names"] == ["rest", "walk", "run"]


def test_the_ppg_alone_regresses_the_heart_rate(wrist, tmp_path):
    out, _ = wrist
    (tmp_path / "ppg").mkdir()
    metrics, ckpt = _train(tmp_path / "ppg", "--x", out / "ppg.npy", "--y", out / "hr.npy", "--task", "regression")
    hr = np.load(out / "hr.npy")
    mean_mae = np.abs(hr - hr.mean()).mean()                       # predicting the mean: ~20 bpm
    assert metrics["mae"] < 0.5 * mean_mae
    assert ckpt["signal"]["fs"] == 64 and ckpt["signal"]["channels"] == ["ppg"]


def test_the_sessions_cut_back_into_the_windows(wrist, tmp_path):
    """s1_*.npy / s2_*.npy and their events: the training and held-out windows back to back, which
    biosig.windows with named recordings cuts into those same windows and activities."""
    wrist = wrist[0]
    proc = run_here("biosig.windows", "--recording", f"ppg={wrist / 's2_ppg.npy'}", f"acc={wrist / 's2_acc.npy'}",
                    "--length", "8", "--events", wrist / "s2_events.csv", "--out", tmp_path / "win")
    assert proc.returncode == 0, proc.stderr
    for name in ("ppg", "acc"):
        assert contract.read(str(wrist / f"s1_{name}.npy"))["fs"] == {"ppg": 64, "acc": 32}[name]
        np.testing.assert_array_equal(np.load(tmp_path / "win" / f"{name}.npy"), np.load(wrist / f"{name}_test.npy"))
    names = json.loads((tmp_path / "win" / "classes.json").read_text())
    cut = [names[k] for k in np.load(tmp_path / "win" / "y.npy")]
    assert cut == [ACTIVITIES[k] for k in np.load(wrist / "act_test.npy")]
    assert np.load(wrist / "s1_acc.npy").shape == (3, 600 * 256)
