"""From recordings to windows (python -m biosig.windows: arrays, EDF through MNE, MNE epochs) and
the signal contract in the checkpoint: channels reordered by name, another sampling rate or a
missing channel refused in one line, raw windows made into the band-power frames a model takes."""
import csv
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ENV, ROOT, assert_user_error, run_here


def module(name, *args, cwd=None):
    """python -m NAME ARGS, in-process (tests/test_bad_input.py runs each tool as a process once)."""
    return run_here(name, *args, cwd=cwd)


def test_windows_of_a_recording_get_their_events_labels_and_groups(tmp_path):
    fs = 100
    recs = [np.arange(2 * 1000, dtype=np.float32).reshape(2, 1000) + 10000 * k for k in range(2)]
    for k, rec in enumerate(recs):
        np.save(tmp_path / f"r{k}.npy", rec)
    # r0: "go" over 1.0-3.0 s, "stop" over 6.0-7.5 s; r1: "stop" over 0-2 s. Windows of 1 s every 0.5 s.
    (tmp_path / "e0.csv").write_text("onset,duration,label\n1.0,2.0,go\n6.0,1.5,stop\n")
    (tmp_path / "e1.csv").write_text("\ufeffonset, duration, label\n0, 2, stop\n")    # as a spreadsheet saves it
    proc = module("biosig.windows", "--recording", tmp_path / "r0.npy", tmp_path / "r1.npy", "--fs", fs,
                  "--channel-names", "C3,C4", "--length", 1, "--stride", 0.5, "--events", tmp_path / "e0.csv",
                  tmp_path / "e1.csv", "--out", tmp_path / "w")
    assert proc.returncode == 0, proc.stderr[-2000:]
    X, y, groups = (np.load(tmp_path / "w" / f"{n}.npy") for n in ("X", "y", "groups"))
    # majority: a window is labelled when more than half of it lies in one event
    starts = {0: [1.0, 1.5, 2.0, 6.0, 6.5], 1: [0.0, 0.5, 1.0]}
    labels = {0: [0, 0, 0, 1, 1], 1: [1, 1, 1]}                        # classes sorted: go=0, stop=1
    assert y.tolist() == labels[0] + labels[1] and groups.tolist() == [0] * 5 + [1] * 3
    for i, (k, s) in enumerate([(k, s) for k in (0, 1) for s in starts[k]]):
        a = int(s * fs)
        np.testing.assert_array_equal(X[i, :, 0], recs[k][:, a:a + fs])
    assert X.shape == (8, 2, 1, 100) and X.dtype == np.float32
    assert json.loads((tmp_path / "w" / "classes.json").read_text()) == ["go", "stop"]
    assert json.loads((tmp_path / "w" / "X.signal.json").read_text())["channels"] == ["C3", "C4"]

    # a new recording with only "stop" keeps the training windows' class numbers (classes.json); its
    # r1.signal.json gives its rate and channels
    (tmp_path / "r1.signal.json").write_text(json.dumps({"fs": fs, "channels": ["C3", "C4"]}))
    proc = module("biosig.windows", "--recording", tmp_path / "r1.npy", "--length", 1, "--events",
                  tmp_path / "e1.csv", "--classes", tmp_path / "w" / "classes.json", "--out", tmp_path / "new")
    assert proc.returncode == 0 and np.load(tmp_path / "new" / "y.npy").tolist() == [1, 1], proc.stderr
    assert json.loads((tmp_path / "new" / "X.signal.json").read_text())["channels"] == ["C3", "C4"]

    assert_user_error(module("biosig.windows", "--recording", tmp_path / "r1.npy", "--fs", fs, "--length", 1,
                             "--events", tmp_path / "e1.csv", "--classes", "stop,sotp", "--out", tmp_path / "bad"),
                      "no event is named sotp")

    # per-sample labels and the center rule
    lab = np.zeros(1000, np.int64)
    lab[450:1000] = 2
    np.save(tmp_path / "lab.npy", lab)
    proc = module("biosig.windows", "--recording", tmp_path / "r0.npy", "--fs", fs, "--length", 2, "--labels",
                  tmp_path / "lab.npy", "--label-rule", "center", "--out", tmp_path / "c")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert np.load(tmp_path / "c" / "y.npy").tolist() == [0, 0, 2, 2, 2]     # centers at 1, 3, 5, 7, 9 s

    too_short = f"no window: {tmp_path / 'r0.npy'} (10 s) is shorter than --length 20 s"     # names the file
    for args, needle in ((["--length", 20], too_short), (["--length", 1, "--labels", tmp_path / "lab.npy",
                                                          tmp_path / "lab.npy"], "one per recording"),
                         (["--length", 1, "--fs", 0], "--fs")):
        extra = [] if "--fs" in args else ["--fs", fs]
        assert_user_error(module("biosig.windows", "--recording", tmp_path / "r0.npy", *extra, *args, "--out",
                                 tmp_path / "bad"), needle)
        assert not (tmp_path / "bad").exists() and not (tmp_path / "bad.partial").exists()
    assert_user_error(module("biosig.windows", "--recording", tmp_path / "r0.npy", "--length", 1, "--out",
                             tmp_path / "bad"), "--fs")


def test_an_edf_is_cut_by_its_annotations_and_mne_epochs_become_x_and_y(tmp_path):
    mne = pytest.importorskip("mne")
    pytest.importorskip("edfio")                  # MNE's EDF export
    mne.set_log_level("ERROR")
    fs = 128
    data = np.random.default_rng(0).normal(size=(3, 20 * fs)) * 1e-5
    raw = mne.io.RawArray(data, mne.create_info(["Fz", "Cz", "Pz"], fs, "eeg"))
    # a bad span (MNE's BAD_ annotations) is no class, and the windows it touches are left out
    raw.set_annotations(mne.Annotations([2.0, 10.0, 12.5], [4.0, 4.0, 0.5], ["rest", "move", "BAD_muscle"]))
    mne.export.export_raw(str(tmp_path / "rec.edf"), raw)
    proc = module("biosig.windows", "--recording", tmp_path / "rec.edf", "--length", 2, "--out", tmp_path / "w")
    assert proc.returncode == 0, proc.stderr[-2000:]
    X, y = np.load(tmp_path / "w" / "X.npy"), np.load(tmp_path / "w" / "y.npy")
    assert y.tolist() == [1, 1, 0]                  # move=0, rest=1; windows at 2, 4, 10 s (12-14 s has the bad span)
    back = mne.io.read_raw(str(tmp_path / "rec.edf")).get_data()
    np.testing.assert_allclose(X[2, :, 0], back[:, 10 * fs:12 * fs], rtol=1e-6)
    assert json.loads((tmp_path / "w" / "X.signal.json").read_text()) == {
        "fs": 128.0, "channels": ["Fz", "Cz", "Pz"], "units": "V", "bandpower": None}
    assert json.loads((tmp_path / "w" / "classes.json").read_text()) == ["move", "rest"]
    assert_user_error(module("biosig.windows", "--recording", tmp_path / "rec.edf", "--channel-names", "A,B,C",
                             "--length", 2, "--out", tmp_path / "bad"), "its header names its channels Fz,Cz,Pz")

    events = np.array([[i * 2 * fs, 0, 1 + i % 2] for i in range(6)])
    epochs = mne.EpochsArray(np.random.default_rng(1).normal(size=(6, 3, 64)), raw.info, events,
                             event_id={"left": 1, "right": 2})
    epochs.save(str(tmp_path / "s-epo.fif"))
    proc = module("biosig.windows", "--epochs", tmp_path / "s-epo.fif", "--out", tmp_path / "e")
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "e" / "X.npy")[:, :, 0], epochs.get_data(), rtol=1e-6)
    assert np.load(tmp_path / "e" / "y.npy").tolist() == [0, 1, 0, 1, 0, 1]
    assert json.loads((tmp_path / "e" / "classes.json").read_text()) == ["left", "right"]
    assert np.load(tmp_path / "e" / "onsets.npy").tolist() == [2.0 * i for i in range(6)]     # event sample / fs + tmin


def test_the_signal_contract_reorders_channels_refuses_mismatches_and_makes_band_frames(tmp_path):
    from biosig.signals.bandpower import BandPower
    fs, rng = 128, np.random.default_rng(0)
    n, t = 160, 2 * fs
    y = rng.integers(0, 2, n)
    raw = rng.normal(size=(n, 3, 1, t)).astype(np.float32)
    tt = np.arange(t) / fs
    raw[y == 0, 0, 0] += 2 * np.sin(2 * np.pi * 10 * tt)               # class 0: alpha on Fz; 1: beta on Pz
    raw[y == 1, 2, 0] += 2 * np.sin(2 * np.pi * 20 * tt)
    np.save(tmp_path / "raw.npy", raw)
    np.save(tmp_path / "y.npy", y)
    (tmp_path / "raw.signal.json").write_text(json.dumps({"fs": fs, "channels": ["Fz", "Cz", "Pz"], "units": "V"}))
    proc = module("biosig.bandpower", "--x", tmp_path / "raw.npy", "--fs", fs, "--out", tmp_path / "bands.npy", "--log")
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_here("train.py", "--x", tmp_path / "bands.npy", "--y", tmp_path / "y.npy", "--model", "tcn", "--standardize",
                    "--lr", "3e-3", "--epochs", "4", "--save", tmp_path / "bp.pt", "--run-dir", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    import torch
    signal = torch.load(tmp_path / "bp.pt", weights_only=True)["signal"]
    assert signal["fs"] == fs and signal["channels"] == ["Fz", "Cz", "Pz"] and signal["bandpower"]["log"] is True

    def infer(x, *extra):
        return run_here("infer.py", "--ckpt", tmp_path / "bp.pt", "--x", x, "--y", tmp_path / "y.npy", "--quiet",
                        "--out", tmp_path / "p.npy", *extra)
    frames = infer(tmp_path / "bands.npy")
    assert frames.returncode == 0 and float(frames.stdout.split("accuracy=")[1].split()[0]) > 0.9, frames.stdout
    expected = np.load(tmp_path / "p.npy")
    # raw windows, their channels in another order: reordered by name, made into band frames
    np.save(tmp_path / "shuffled.npy", raw[:, [2, 0, 1]])
    proc = infer(tmp_path / "shuffled.npy", "--fs", fs, "--channel-names", "Pz,Fz,Cz")
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, atol=1e-5)
    np.testing.assert_allclose(BandPower(fs, log=True)(raw), np.load(tmp_path / "bands.npy"), atol=1e-5)

    assert_user_error(infer(tmp_path / "shuffled.npy", "--fs", 256, "--channel-names", "Pz,Fz,Cz"),
                      "sampled at 256 Hz", "128 Hz")
    assert_user_error(infer(tmp_path / "shuffled.npy", "--fs", fs, "--channel-names", "Pz,Fz,T7"), "no channel Cz")
    (tmp_path / "raw_uV.npy").write_bytes((tmp_path / "raw.npy").read_bytes())
    (tmp_path / "raw_uV.signal.json").write_text(json.dumps({"fs": fs, "channels": ["Fz", "Cz", "Pz"], "units": "uV"}))
    assert_user_error(infer(tmp_path / "raw_uV.npy"), "in uV", "trained on V")
    proc = infer(tmp_path / "raw.npy")                                  # its sidecar says what it is
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr
    np.save(tmp_path / "bare.npy", np.load(tmp_path / "bands.npy"))    # no description: warned, not checked
    proc = infer(tmp_path / "bare.npy")
    assert proc.returncode == 0 and "sampling rate and channel names and order unknown" in proc.stderr
    proc = infer(tmp_path / "bare.npy", "--fs", fs)                    # the rate alone: the order still unchecked
    assert proc.returncode == 0 and "channel names and order unknown" in proc.stderr

    # a raw recording (C, 1, T) streams through the same band-power frames
    recording = np.concatenate(list(raw[:4, [2, 0, 1]]), axis=-1)       # (3, 1, 4 * t), Pz, Fz, Cz
    np.save(tmp_path / "rec.npy", recording)
    (tmp_path / "rec.signal.json").write_text(json.dumps({"fs": fs, "channels": ["Pz", "Fz", "Cz"]}))
    proc = run_here("infer.py", "--ckpt", tmp_path / "bp.pt", "--stream", "--x", tmp_path / "rec.npy", "--context", "all",
                    "--out", tmp_path / "frames.csv", "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len((tmp_path / "frames.csv").read_text().splitlines()) - 1 == BandPower(fs).n_frames(4 * t)

    # the same recording live over LSL: the stream's channel labels and rate are checked, then the
    # same band frames, frame for frame
    pylsl = pytest.importorskip("pylsl")
    for rate, ok in ((256, False), (fs, True)):
        name = f"biosig-raw-{rate}-{time.time_ns()}"
        info = pylsl.StreamInfo(name, "EEG", 3, rate, "float32", name)
        labels = info.desc().append_child("channels")
        for label in ("Pz", "Fz", "Cz"):
            labels.append_child("channel").append_child_value("label", label)
        source = pylsl.StreamOutlet(info)
        proc = subprocess.Popen([sys.executable, f"{ROOT}/infer.py", "--ckpt", str(tmp_path / "bp.pt"), "--lsl", name,
                                 "--max-frames", str(recording.shape[-1]), "--context", "all", "--chunk", "16",
                                 "--out", str(tmp_path / "live.csv"), "--quiet"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=ENV)
        try:
            if ok:
                assert source.wait_for_consumers(60)
                for at in range(0, recording.shape[-1], 64):
                    source.push_chunk(np.ascontiguousarray(recording[:, 0, at:at + 64].T))
                    time.sleep(0.005)
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        if not ok:
            assert_user_error(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr),
                              "runs at 256 Hz", "takes 128 Hz")
            continue
        assert proc.returncode == 0, stderr[-2000:]
        live = list(csv.DictReader(open(tmp_path / "live.csv")))
        offline = list(csv.DictReader(open(tmp_path / "frames.csv")))
        assert len(live) == len(offline)
        assert max(abs(float(a["prob_0"]) - float(b["prob_0"])) for a, b in zip(live, offline)) < 1e-5


def windows_main(argv, capsys):
    """python -m biosig.windows ARGV in-process -> its warning lines (stderr)."""
    import signal
    from biosig.cli.windows import main
    sigterm = signal.getsignal(signal.SIGTERM)               # main() takes SIGTERM over
    capsys.readouterr()
    try:
        main([str(a) for a in argv])
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]


def edf(path, names, seconds, fs=128, annotations=None):
    """An EDF of `seconds` of noise on channels `names` (MNE's export, through edfio)."""
    mne = pytest.importorskip("mne")
    pytest.importorskip("edfio")
    mne.set_log_level("ERROR")
    raw = mne.io.RawArray(np.random.default_rng(0).normal(size=(len(names), seconds * fs)) * 1e-5,
                          mne.create_info(names, fs, "eeg"))
    if annotations:
        raw.set_annotations(mne.Annotations(*zip(*annotations)))
    mne.export.export_raw(str(path), raw, overwrite=True)
    return path


def test_a_truncated_edf_is_said_to_be_and_windowed_as_far_as_it_reads(tmp_path, capsys):
    """An EDF cut short (a recorder that crashed, a copy that stopped) was windowed silently: MNE
    infers the length from the file size and its warning was muted."""
    whole = edf(tmp_path / "whole.edf", ["Fz", "Cz"], 20)
    data = whole.read_bytes()
    (tmp_path / "cut.edf").write_bytes(data[:len(data) // 2])          # 20 records of 1 s in the header
    warnings = windows_main(["--recording", tmp_path / "cut.edf", "--length", 1, "--out", tmp_path / "w"], capsys)
    truncated = [w for w in warnings if "cut.edf" in w and "header says" in w]
    assert len(truncated) == 1 and "the header says 20 s, 9 s could be read" in truncated[0], warnings
    assert np.load(tmp_path / "w" / "X.npy").shape == (9, 2, 1, 128)
    # the whole file: nothing said
    warnings = windows_main(["--recording", whole, "--length", 1, "--out", tmp_path / "w2"], capsys)
    assert not [w for w in warnings if "header says" in w], warnings


def test_events_past_a_recordings_end_are_counted_in_a_warning(tmp_path, capsys):
    np.save(tmp_path / "r.npy", np.random.default_rng(0).normal(size=(2, 10 * 100)).astype(np.float32))   # 10 s
    (tmp_path / "e.csv").write_text("onset,duration,label\n1,3,go\n5,3,stop\n12,2,go\n15.5,1,stop\n9.5,2,go\n")
    warnings = windows_main(["--recording", tmp_path / "r.npy", "--fs", 100, "--length", 1, "--events",
                             tmp_path / "e.csv", "--out", tmp_path / "w"], capsys)
    assert warnings == ["warning: " + f"{tmp_path / 'r.npy'}: 2 event(s) start past its end (10 s; the first at "
                        f"12 s): dropped"], warnings
    assert np.load(tmp_path / "w" / "y.npy").tolist() == [0, 0, 0, 1, 1, 1]    # 1-4 s go, 5-8 s stop


def test_length_and_stride_rounded_to_whole_samples_are_said_to_be(tmp_path, capsys):
    np.save(tmp_path / "r.npy", np.zeros((1, 1000), np.float32))
    common = ["--recording", tmp_path / "r.npy", "--fs", 128]
    warnings = windows_main([*common, "--length", 0.3, "--stride", 0.25, "--out", tmp_path / "a"], capsys)
    assert warnings == ["warning: rounded to whole samples at 128 Hz: --length 0.3 s to 38 samples (0.296875 s)"]
    assert np.load(tmp_path / "a" / "X.npy").shape[-1] == 38
    warnings = windows_main([*common, "--length", 0.25, "--stride", 0.1, "--out", tmp_path / "b"], capsys)
    assert warnings == ["warning: rounded to whole samples at 128 Hz: --stride 0.1 s to 13 samples (0.101562 s)"]
    assert windows_main([*common, "--length", 0.5, "--out", tmp_path / "c"], capsys) == []     # 64 samples exactly


def test_channel_names_match_ignoring_case_where_that_is_unambiguous(tmp_path, capsys):
    """Amplifiers write FZ or Fz: --channels, recordings of one montage, and a checkpoint's channels
    (infer.py, --stream, --lsl: contract.match_channels) match ignoring case, and say so; two names
    equal but for case are matched exactly only."""
    from biosig.signals import contract
    from biosig.errors import UserError
    from conftest import main_fails
    from biosig.cli.windows import main
    a = edf(tmp_path / "a.edf", ["Fz", "Cz", "Pz"], 4, annotations=[(0.0, 4.0, "rest")])
    b = edf(tmp_path / "b.edf", ["PZ", "FZ", "CZ"], 4, annotations=[(0.0, 4.0, "rest")])   # another amplifier
    warnings = windows_main(["--recording", a, b, "--length", 2, "--out", tmp_path / "w"], capsys)
    assert warnings == [f"warning: {b}: channels matched ignoring case: FZ as Fz, CZ as Cz, PZ as Pz"]
    assert json.loads((tmp_path / "w" / "X.signal.json").read_text())["channels"] == ["Fz", "Cz", "Pz"]
    X = np.load(tmp_path / "w" / "X.npy")
    import mne
    back = mne.io.read_raw(str(b)).get_data()
    np.testing.assert_allclose(X[2:, :, 0], np.stack([back[[1, 2, 0], :256], back[[1, 2, 0], 256:]]), rtol=1e-6)
    warnings = windows_main(["--recording", b, "--channels", "Cz,Fz", "--length", 2, "--out", tmp_path / "p"], capsys)
    assert warnings == [f"warning: {b}: channels matched ignoring case: CZ as Cz, FZ as Fz"]
    assert json.loads((tmp_path / "p" / "X.signal.json").read_text())["channels"] == ["CZ", "FZ"]   # its own names
    windows_main(["--recording", a, "--channels", "FZ,pz", "--length", 2, "--out", tmp_path / "q"], capsys)
    assert json.loads((tmp_path / "q" / "X.signal.json").read_text())["channels"] == ["Fz", "Pz"]
    np.testing.assert_allclose(np.load(tmp_path / "p" / "X.npy")[0, :, 0], back[[2, 1], :256], rtol=1e-6)
    main_fails(main, ["--recording", b, "--channels", "Cz,Oz", "--length", 2, "--out", tmp_path / "bad"], capsys,
               "has no channel Oz")

    # a checkpoint's channels (what conform() and the LSL decoder match by)
    x = np.arange(3 * 4, dtype=np.float32).reshape(1, 3, 1, 4)
    out = contract.conform(x, {"channels": ["PZ", "FZ", "CZ"]}, {"channels": ["Fz", "Cz", "Pz"]}, "x.npy", "m.pt")
    np.testing.assert_array_equal(out, x[:, [1, 2, 0]])
    assert capsys.readouterr().err == "warning: x.npy: channels matched ignoring case: FZ as Fz, CZ as Cz, PZ as Pz\n"
    assert contract.match_channels(["Fz", "FZ", "Cz"], ["FZ", "Cz"], "x.npy") == [1, 2]     # exact first
    with pytest.raises(UserError, match=r"has no channel Fz \(Fz, FZ, fz: equal but for case, so matched exactly"):
        contract.match_channels(["FZ", "fz", "Cz"], ["Fz", "Cz"], "x.npy")
    assert capsys.readouterr().err == ""


def test_windows_carry_their_onsets_into_infer_predictions(tmp_path, capsys):
    """onsets.npy (N,) float64 beside groups.npy: each window's start in seconds in its recording,
    so that predictions map back to it; infer.py --out writes it as an onset_s column."""
    from biosig.cli.infer import main as infer
    from biosig.cli.train import main as train
    from biosig.errors import run_cli
    from conftest import FAST, main_fails
    fs, rng = 64, np.random.default_rng(0)
    t = np.arange(40 * fs) / fs
    for k in range(2):                  # alternating 4 s of 6 Hz (a) and 4 s of 20 Hz (b) on channel 0
        rec = rng.normal(size=(2, len(t))) * 0.3
        rec[0] += np.where((t // 4) % 2 == 0, np.sin(2 * np.pi * 6 * t), np.sin(2 * np.pi * 20 * t))
        np.save(tmp_path / f"r{k}.npy", rec.astype(np.float32))
        (tmp_path / f"e{k}.csv").write_text("onset,duration,label\n" + "".join(
            f"{s},4,{'ab'[(s // 4) % 2]}\n" for s in range(0, 40, 4)))
    windows_main(["--recording", tmp_path / "r0.npy", tmp_path / "r1.npy", "--fs", fs, "--channel-names", "C3,C4",
                  "--length", 1.5, "--stride", 0.75, "--events", tmp_path / "e0.csv", tmp_path / "e1.csv",
                  "--out", tmp_path / "w"], capsys)
    w = tmp_path / "w"
    onsets, groups = np.load(w / "onsets.npy"), np.load(w / "groups.npy")
    assert onsets.dtype == np.float64 and onsets.shape == groups.shape
    starts = np.arange(0, 40 * fs - 96 + 1, 48)
    majority = np.array([np.bincount((np.arange(s, s + 96) // (4 * fs)) % 2).argmax() for s in starts])
    assert onsets[groups == 0].tolist() == (starts / fs).tolist()                 # every window has a label
    assert np.load(w / "y.npy")[groups == 0].tolist() == majority.tolist()
    X = np.load(w / "X.npy")
    np.testing.assert_array_equal(X[groups == 1][7, :, 0], np.load(tmp_path / "r1.npy")[:, 7 * 48:7 * 48 + 96])

    run_cli(train, [str(a) for a in ["--x", w / "X.npy", "--y", w / "y.npy", "--save", tmp_path / "m.pt",
                                     "--run-dir", tmp_path / "run", "--epochs", "1", "--no-report", *FAST]])
    run_cli(infer, [str(a) for a in ["--ckpt", tmp_path / "m.pt", "--x", w / "X.npy", "--quiet",
                                     "--out", tmp_path / "p.csv"]])
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert list(rows[0])[:2] == ["sample", "onset_s"] and len(rows) == len(onsets)
    assert [float(r["onset_s"]) for r in rows] == onsets.tolist()
    run_cli(infer, [str(a) for a in ["--ckpt", tmp_path / "m.pt", "--x", w / "X.npy", "--quiet",
                                     "--out", tmp_path / "p.jsonl"]])
    assert [json.loads(line)["onset_s"] for line in open(tmp_path / "p.jsonl")] == onsets.tolist()
    np.save(tmp_path / "short.npy", onsets[:5])
    main_fails(infer, ["--ckpt", tmp_path / "m.pt", "--x", w / "X.npy", "--onsets", tmp_path / "short.npy",
                       "--out", tmp_path / "q.csv"], capsys, "short.npy", f"({len(onsets)},)")
    main_fails(infer, ["--ckpt", tmp_path / "m.pt", "--x", w / "X.npy", "--onsets", w / "onsets.npy"], capsys,
               "--onsets", "--out")
    assert not (tmp_path / "q.csv").exists()


def test_a_refused_raw_input_prints_only_its_error(tmp_path, capsys):
    """Raw samples given to a band-power checkpoint with --onsets that do not fit: the one error
    line, not first the line saying the samples were made into band-power frames."""
    from biosig.cli.bandpower import main as bandpower
    from biosig.cli.infer import main as infer
    from biosig.cli.train import main as train
    from conftest import main_fails, run_main
    fs, rng = 128, np.random.default_rng(0)
    raw = rng.normal(size=(32, 2, 1, fs)).astype(np.float32)
    np.save(tmp_path / "raw.npy", raw)
    np.save(tmp_path / "y.npy", rng.integers(0, 2, 32))
    (tmp_path / "raw.signal.json").write_text(json.dumps({"fs": fs, "channels": ["C3", "C4"], "units": "V"}))
    assert run_main(bandpower, ["--x", tmp_path / "raw.npy", "--fs", fs, "--out", tmp_path / "bands.npy"], capsys)[0] == 0
    assert run_main(train, ["--x", tmp_path / "bands.npy", "--y", tmp_path / "y.npy", "--model", "tcn", "--epochs", "1",
                            "--save", tmp_path / "bp.pt", "--run-dir", tmp_path / "run", "--no-report"], capsys)[0] == 0
    np.save(tmp_path / "short.npy", np.arange(5.0))
    argv = ["--ckpt", tmp_path / "bp.pt", "--x", tmp_path / "raw.npy", "--out", tmp_path / "p.csv", "--quiet"]
    main_fails(infer, argv + ["--onsets", tmp_path / "short.npy"], capsys, "short.npy", "(32,)")
    code, out, _ = run_main(infer, argv + ["--onsets", tmp_path / "short.npy"], capsys)
    assert code == 2 and out == ""
    code, out, _ = run_main(infer, argv, capsys)                      # accepted: the line is said
    assert code == 0 and "made into" in out
