"""Several signals at their own rates (python -m biosig.windows with named recordings or
--modality): one windows file per modality, window i covering the same seconds in each, the
labels, groups and onsets shared; the mistakes a user can make refused in one line, nothing written."""
import json
import os

import numpy as np
import pytest

from conftest import main_fails, run_main


def windows_main():
    from biosig.cli.windows import main
    return main


def clock(seconds, fs, channels):
    """(channels, seconds * fs) float32 whose samples say their time: 1000 * t + 100000 * channel."""
    t = np.arange(int(seconds * fs)) / fs
    return (1000 * t[None] + 100000 * np.arange(channels)[:, None]).astype(np.float32)


@pytest.fixture
def wrist(tmp_path):
    """Two sessions of PPG (64 Hz, 1 channel) and acceleration (32 Hz, 3 channels): s01 20 s of both;
    s02 15 s of PPG but 14 s of acceleration. Events: s01 rest 0-9 s, walk 9-20 s; s02 walk."""
    for k, (ppg_s, acc_s) in enumerate([(20, 20), (15, 14)], 1):
        np.save(tmp_path / f"s0{k}_ppg.npy", clock(ppg_s, 64, 1))
        np.save(tmp_path / f"s0{k}_acc.npy", clock(acc_s, 32, 3))
    (tmp_path / "e1.csv").write_text("onset,duration,label\n0,9,rest\n9,11,walk\n")
    (tmp_path / "e2.csv").write_text("onset,duration,label\n0,15,walk\n")
    return tmp_path


def recordings(d, order=("ppg", "acc")):
    return ["--recording", *[f"{m}={d / f's0{k}_{m}.npy'}" for k in (1, 2) for m in order]]


def test_named_recordings_make_aligned_windows_per_modality(wrist, capsys):
    d = wrist
    argv = [*recordings(d), "--fs", "ppg=64", "acc=32", "--channel-names", "ppg=ppg", "acc=x,y,z", "--units", "acc=g",
            "--length", 4, "--stride", 2, "--events", d / "e1.csv", d / "e2.csv", "--out", d / "ex"]
    code, out, err = run_main(windows_main(), argv, capsys)
    assert code == 0, err
    assert "s02_ppg.npy: its modalities' durations differ (ppg 15 s, acc 14 s): cut to the shortest, 14 s" in err
    assert "ppg (15, 1, 1, 256) at 64 Hz, acc (15, 3, 1, 128) at 32 Hz" in out and "2 session(s)" in out
    ppg, acc = np.load(d / "ex" / "ppg.npy"), np.load(d / "ex" / "acc.npy")
    y, groups, onsets = (np.load(d / "ex" / f"{n}.npy") for n in ("y", "groups", "onsets"))
    # s01: (20 - 4) / 2 + 1 = 9 windows; s02 cut to 14 s: 6
    assert groups.tolist() == [0] * 9 + [1] * 6
    assert onsets.tolist() == [2.0 * i for i in range(9)] + [2.0 * i for i in range(6)]
    assert y.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1] + [1] * 6        # rest=0, walk=1; 6-10 s is mostly rest
    assert ppg.shape[-1] / 64 == acc.shape[-1] / 32 == 4
    for i, onset in enumerate(onsets):                 # window i covers [onset, onset + 4) s in both
        np.testing.assert_array_equal(ppg[i, 0, 0], 1000 * (onset + np.arange(256) / 64))
        for c in range(3):
            np.testing.assert_array_equal(acc[i, c, 0], 1000 * (onset + np.arange(128) / 32) + 100000 * c)
    assert json.loads((d / "ex" / "acc.signal.json").read_text()) == {"fs": 32.0, "channels": ["x", "y", "z"],
                                                                       "units": "g", "bandpower": None}
    assert json.loads((d / "ex" / "ppg.signal.json").read_text())["fs"] == 64.0
    assert json.loads((d / "ex" / "classes.json").read_text()) == ["rest", "walk"]
    assert json.loads((d / "ex" / "groups.json").read_text()) == ["s01_ppg.npy", "s02_ppg.npy"]
    assert sorted(os.listdir(d / "ex")) == sorted(["ppg.npy", "ppg.signal.json", "acc.npy", "acc.signal.json", "y.npy",
                                                   "groups.npy", "groups.json", "onsets.npy", "classes.json"])

    # per-sample labels are the first modality's (here acc, named first); --fs NAME=HZ,NAME=HZ; --overwrite
    for k, n in ((1, 640), (2, 448)):
        np.save(d / f"lab{k}.npy", (np.arange(n) >= 320).astype(np.int64) + 2 * (k - 1))   # 10 s at 32 Hz
    argv = [*recordings(d, ("acc", "ppg")), "--fs", "acc=32,ppg=64", "--length", 4, "--stride", 2, "--labels",
            d / "lab1.npy", d / "lab2.npy", "--label-rule", "center", "--out", d / "ex", "--overwrite"]
    code, out, err = run_main(windows_main(), argv, capsys)
    assert code == 0, err
    assert np.load(d / "ex" / "y.npy").tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1] + [2, 2, 2, 2, 3, 3]   # centers 2, 4, ...
    assert not (d / "ex" / "classes.json").exists()
    np.testing.assert_array_equal(np.load(d / "ex" / "ppg.npy")[10, 0, 0, :3], 1000 * (2 + np.arange(3) / 64))


def test_modalities_of_one_mne_file_at_their_own_rates(tmp_path, capsys):
    mne = pytest.importorskip("mne")
    pytest.importorskip("scipy")
    mne.set_log_level("ERROR")
    fs, seconds = 128, 12
    t = np.arange(seconds * fs) / fs
    data = np.stack([t, t + 100, np.sin(2 * np.pi * 0.5 * t)]) * 1e-3
    raw = mne.io.RawArray(data, mne.create_info(["Fz", "Cz", "EMG1"], fs, ["eeg", "eeg", "emg"]))
    raw.set_annotations(mne.Annotations([0.0, 6.0], [6.0, 6.0], ["still", "move"]))
    raw.save(str(tmp_path / "s01_raw.fif"), fmt="double")
    argv = ["--recording", tmp_path / "s01_raw.fif", "--modality", "eeg=Cz,Fz", "--modality", "emg=EMG1",
            "--resample", "emg=32", "--length", 2, "--stride", 1, "--out", tmp_path / "ex"]
    code, out, err = run_main(windows_main(), argv, capsys)
    assert code == 0, err
    eeg, emg = np.load(tmp_path / "ex" / "eeg.npy"), np.load(tmp_path / "ex" / "emg.npy")
    onsets, y = np.load(tmp_path / "ex" / "onsets.npy"), np.load(tmp_path / "ex" / "y.npy")
    assert eeg.shape == (11, 2, 1, 256) and emg.shape == (11, 1, 1, 64)
    assert onsets.tolist() == list(range(11)) and y.tolist() == [1] * 5 + [0] * 6     # move=0, still=1
    for i, onset in enumerate(onsets):
        np.testing.assert_allclose(eeg[i, :, 0], 1e-3 * (onset + np.arange(256) / fs + np.array([[100], [0]])),
                                   rtol=1e-6)
        if 0 < i < 10:        # the resampler's filter is exact but at a recording's two ends
            np.testing.assert_allclose(emg[i, 0, 0], 1e-3 * np.sin(2 * np.pi * 0.5 * (onset + np.arange(64) / 32)),
                                       atol=2e-5)
    assert json.loads((tmp_path / "ex" / "emg.signal.json").read_text()) == {"fs": 32.0, "channels": ["EMG1"],
                                                                             "units": "V", "bandpower": None}
    assert json.loads((tmp_path / "ex" / "eeg.signal.json").read_text())["channels"] == ["Cz", "Fz"]
    bad = [*argv[:6], "--resample", "emg=31.4159", "--length", 2, "--out", tmp_path / "bad"]
    main_fails(windows_main(), bad, capsys, "--resample emg=31.4159", "ratio of small integers to", "128 Hz")
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad.partial").exists()


@pytest.mark.parametrize("change, needles", [
    (lambda d, a: ["--recording", f"ppg={d / 's01_ppg.npy'}", str(d / "s01_acc.npy"), *a[3:]],
     ["s01_acc.npy", "name every recording (NAME=PATH) or none"]),
    (lambda d, a: [*a[:4], *a[5:]], ["every session needs a recording of each modality", "2 ppg, 1 acc"]),
    (lambda d, a: [*a, "--fs", "emg=256"], ["--fs emg=256", "no modality is named emg (the modalities: ppg, acc)"]),
    (lambda d, a: [*a, "--fs", "ppg=128"], ["--fs: ppg is given two values (64 and 128)"]),
    (lambda d, a: [*a, "--fs", "64"], ["--fs: give NAME=VALUE for each modality or one plain value, not both"]),
    (lambda d, a: [*a, "--stride", str(1 / 64)], ["--stride 0.015625 s is 0.5 samples of acc at 32 Hz"]),
    (lambda d, a: [*a, "--resample", "32"], ["--resample NAME=HZ: name the modality"]),
    (lambda d, a: [*a, "--modality", "acc=x"], ["--modality picks channels of each recording"]),
    (lambda d, a: [*a, "--labels", d / "e1.csv"], ["--labels: give one per session (2), got 1"]),
    (lambda d, a: [*a[:4], f"acc={d / 's01_acc.npy'}", *a[5:]], ["--recording: a file is given twice"]),
    (lambda d, a: ["--modality", "ppg=ppg", *a[5:]], ["--modality picks channels of recordings: give them"]),
    (lambda d, a: [x.replace("ppg=", "y=") for x in map(str, a)], ["modality y: a name of its own"]),
])
def test_modality_mistakes_are_one_line_and_write_nothing(wrist, capsys, change, needles):
    from test_bad_input import snapshot
    (wrist / "s01_ppg.signal.json").write_text(json.dumps({"fs": 64}))        # a sidecar's rate, checked
    argv = [*recordings(wrist), "--fs", "ppg=64", "acc=32", "--length", "4", "--out", str(wrist / "ex")]
    before = snapshot(wrist)
    main_fails(windows_main(), [str(a) for a in change(wrist, argv)], capsys, *needles)
    assert snapshot(wrist) == before


def test_a_rate_contradicting_a_sidecar_and_a_plain_flag_for_named_recordings(wrist, capsys):
    (wrist / "s01_ppg.signal.json").write_text(json.dumps({"fs": 64}))
    main_fails(windows_main(), [*recordings(wrist), "--fs", "ppg=128", "acc=32", "--length", 4, "--out", wrist / "ex"],
               capsys, "s01_ppg.npy: --fs 128 contradicts")
    main_fails(windows_main(), ["--recording", wrist / "s01_ppg.npy", "--fs", "ppg=64", "--length", 4, "--out",
                                wrist / "ex"], capsys, "--fs ppg=64: a value per modality")
    assert not (wrist / "ex").exists() and not (wrist / "ex.partial").exists()
