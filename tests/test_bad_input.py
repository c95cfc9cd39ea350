"""Every input a user can get wrong: exit 2, one line naming the file and the problem, nothing written.

The checks run the commands' main(argv) in-process (run_here: errors.run_cli, the script's exit
status and stderr); test_a_real_process_exits_2_with_one_line runs each script as a process once."""
import os
import pickle

import numpy as np
import pytest
import torch

from conftest import FAST, assert_user_error, main_fails, make_windows, run, run_here, run_main

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


class Payload:
    """Unpickling this runs code: it creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def files(tmp_path):
    X, y = make_windows(n=60)
    d = tmp_path
    np.save(d / "X.npy", X)
    np.save(d / "y.npy", y)
    np.save(d / "X3d.npy", X[:, :, 0])
    nan = X.copy()
    nan[7, 1, 0, 3] = np.nan
    np.save(d / "Xnan.npy", nan)
    inf = X.copy()
    inf[9, 0, 0, 0] = np.inf
    np.save(d / "Xinf.npy", inf)
    np.save(d / "y_short.npy", y[:50])
    np.save(d / "y_float.npy", y.astype(np.float32) + 0.5)
    np.save(d / "y_neg.npy", y - 1)
    np.save(d / "y_one.npy", np.zeros_like(y))
    np.save(d / "X_few.npy", X[:3])
    np.save(d / "y_few.npy", np.array([0, 1, 2]))
    (d / "text.npy").write_text("these are not numbers\n")
    raw = (d / "X.npy").read_bytes()
    (d / "trunc.npy").write_bytes(raw[: len(raw) // 2])
    np.save(d / "obj.npy", np.array([Payload(str(d / "PWNED")), 1], dtype=object), allow_pickle=True)
    (d / "sub").mkdir()
    return d


def snapshot(d):
    """Every path under d with its size and mtime, to prove a failed run wrote nothing."""
    out = {}
    for root, dirs, names in os.walk(d):
        for name in dirs + names:
            p = os.path.join(root, name)
            st = os.stat(p)
            out[p] = (st.st_size, st.st_mtime_ns)
    return out


def train_fails(d, *args, needles, x="X.npy", y="y.npy", save="out.pt", extra_save=None):
    (d / "keep.pt").write_bytes(b"an earlier checkpoint")       # must survive a failed run
    before = snapshot(d)
    cmd = ["--x", d / x if x else None, "--y", d / y if y else None,
           "--save", extra_save or (d / save if save else None), "--run-dir", d / "run", "--epochs", "1", *FAST, *args]
    proc = run_here("train.py", *[a for a in cmd if a is not None])
    line = assert_user_error(proc, *needles)
    assert snapshot(d) == before, "a failed run wrote or changed files"
    assert not (d / "PWNED").exists()
    return line


@pytest.mark.parametrize("x, y, extra, needles", [
    ("missing.npy", "y.npy", [], ["missing.npy", "not found"]),
    ("sub", "y.npy", [], ["sub", "directory"]),
    ("text.npy", "y.npy", [], ["text.npy", "not a .npy file"]),
    ("trunc.npy", "y.npy", [], ["trunc.npy", "truncated"]),
    ("obj.npy", "y.npy", [], ["obj.npy", "object dtype"]),
    ("X3d.npy", "y.npy", [], ["X3d.npy", "4-D (N, C, F, T)"]),
    ("X.npy", "y_short.npy", [], ["y_short.npy", "50 labels", "60 windows"]),
    ("Xnan.npy", "y.npy", [], ["Xnan.npy", "NaN or Inf", "window 7"]),
    ("Xinf.npy", "y.npy", [], ["Xinf.npy", "NaN or Inf", "window 9"]),
    ("X.npy", "y_float.npy", [], ["y_float.npy", "integers"]),
    ("X.npy", "y_neg.npy", [], ["y_neg.npy", "negative label"]),
    ("X.npy", "y.npy", ["--classes", "2"], ["y.npy", "outside [0, 1]", "--classes 2"]),
    ("X.npy", "y_one.npy", [], ["y_one.npy", "only one class"]),
    ("X_few.npy", "y_few.npy", [], ["X_few.npy", "too few"]),
    ("X.npy", "obj.npy", [], ["obj.npy", "object dtype"]),
    ("X.npy", "y.npy", ["--elec", "5"], ["X.npy", "--elec 5", "has 3"]),
    ("X.npy", "y.npy", ["--bands", "4"], ["X.npy", "--bands 4", "has 1"]),
    ("X.npy", "y.npy", ["--cnn-time-pool", "64"], ["X.npy", "T=32", "too short"]),
    ("X.npy", "y.npy", ["--cnn-time-pool", "fast"], ["--cnn-time-pool", "'fast'", "(or auto)"]),
    ("X.npy", "y.npy", ["--amp", "fp16", "--device", "cpu"], ["--amp fp16", "CUDA"]),
    ("X.npy", "y.npy", ["--split", "group"], ["--split group", "--groups"]),
    ("X.npy", "y.npy", ["--val-split", "1.5"], ["--val-split"]),
    ("X.npy", "y.npy", ["--class-names", "missing.json"], ["missing.json"]),
    ("X.npy", "y.npy", ["--lr", "1e30"], ["training loss is not finite", "--lr"]),    # diverges: nothing kept
])
def test_train_bad_data(files, x, y, extra, needles):
    train_fails(files, *extra, x=x, y=y, needles=needles)


def test_every_numeric_option_is_range_checked(files):
    """Before: tracebacks (--lr -1), silent acceptance (--clip -1), or an untrained 'best' checkpoint
    (--limit-train-batches 0). Now: one line at parse time, exit 2, nothing written. (One test: each
    flag's declared range through the same parse-time check, in-process, milliseconds each.)"""
    for flag, value, needle in [
        ("--lr", "-1", "must be > 0"), ("--lr", "nan", "finite"), ("--wd", "-1", "must be >= 0"),
        ("--lr-factor", "2", "(0, 1)"), ("--lr-factor", "0", "(0, 1)"), ("--clip", "-1", ">= 0"),
        ("--patience", "-1", ">= 0"), ("--min-delta", "-1", ">= 0"), ("--workers", "-1", ">= 0"),
        ("--limit-train-batches", "0", "> 0"), ("--limit-train-batches", "2.5", "whole number"),
        ("--epochs", "0", ">= 1"), ("--batch", "0", ">= 1"), ("--seed", "-1", ">= 0"), ("--drop", "1", "[0, 1)"),
        ("--val-split", "1", "[0, 1)"), ("--classes", "1", ">= 2"), ("--heads", "x", "an integer"),
    ]:
        train_fails(files, f"{flag}={value}", needles=[f"argument {flag}", needle])


def test_a_real_process_exits_2_with_one_line(files):
    """The scripts as processes (the checks above run main in-process): exit status 2, one line on
    stderr, no traceback, nothing written; infer.py and sweep.py range-check their numbers."""
    before = snapshot(files)
    assert_user_error(run("train.py", "--x", files / "X.npy"), "--save")
    assert_user_error(run("infer.py", "--ckpt", files / "m.pt", "--x", files / "X.npy", "--batch", "0"),
                      "--batch", ">= 1")
    assert_user_error(run("sweep.py", "--grid", files / "g.json", "--out", files / "o", "--grace", "-1"),
                      "--grace", ">= 0")
    assert snapshot(files) == before


def test_each_python_m_tool_as_a_process_exits_2_with_one_line(files):
    """python -m biosig.<tool> as a user runs it (their other checks call main in-process): a bad
    input is exit status 2, one line on stderr naming it, no traceback, nothing written."""
    import subprocess
    import sys
    from conftest import ENV, ROOT
    before = snapshot(files)
    for tool, argv, needles in [
        ("bandpower", ["--x", files / "none.npy", "--fs", "128", "--out", files / "bp.npy"], ["none.npy"]),
        ("convert", ["--x", files / "none.npy", "--out", files / "w.parquet"], ["none.npy", "not found"]),
        ("windows", ["--recording", files / "none.npy", "--fs", "64", "--length", "1", "--out", files / "win"],
         ["none.npy", "not found"]),
        ("export", ["--ckpt", files / "none.pt", "--out", files / "m.onnx"], ["none.pt", "not found"]),
        ("report", [files / "norun"], ["norun", "no such directory"]),
        ("examples", ["nosuchtask", files / "ex"], ["nosuchtask", "python -m biosig.examples --help"]),
    ]:
        proc = subprocess.run([sys.executable, "-m", f"biosig.{tool}", *map(str, argv)], capture_output=True,
                              text=True, cwd=ROOT, env=ENV, timeout=300)
        assert_user_error(proc, *needles)
    assert snapshot(files) == before


@pytest.mark.parametrize("labels, extra, needles", [
    ("typo", [], ["y_bad.npy", "no window has class 3, 4, 5, 6 of 0..7", "label 7 (1 window)", "typo"]),
    ("one_based", [], ["y_bad.npy", "no window has class 0 of 0..3", "1-based"]),
])
def test_labels_that_leave_a_class_empty_are_refused(files, labels, extra, needles):
    y = np.load(files / "y.npy")
    if labels == "typo":
        y[5] = 7
    else:
        y = y + 1
    np.save(files / "y_bad.npy", y)
    train_fails(files, *extra, y="y_bad.npy", needles=needles)


def test_empty_classes_on_purpose_warn_once_and_whole_float_labels_train(files, tmp_path):
    """--classes K given explicitly keeps empty classes with one warning; float labels that are
    whole numbers (MATLAB exports) are read as in parquet."""
    np.save(files / "y_f.npy", np.load(files / "y.npy").astype(np.float64))
    proc = run_here("train.py", "--x", files / "X.npy", "--y", files / "y_f.npy", "--classes", "5", "--save",
                    tmp_path / "m.pt", "--run-dir", tmp_path / "run", "--epochs", "1", *FAST)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "class 3, 4" in warnings[0], proc.stderr
    assert torch.load(tmp_path / "m.pt", weights_only=True)["task"]["n_classes"] == 5


def test_train_groups_wrong_length(files):
    np.save(files / "g.npy", np.arange(10))
    train_fails(files, "--split", "group", "--groups", files / "g.npy", needles=["g.npy", "shape (60,)"])


def test_unwritable_save(files):
    train_fails(files, save="nodir/out.pt", needles=["nodir/out.pt", "does not exist"])
    # a missing directory beside the run directory is still refused (only the run dir is created)
    train_fails(files, save="runx/out.pt", needles=["runx/out.pt", "does not exist"])
    # never over the data, nor over the run's own files
    train_fails(files, save="X.npy", needles=["X.npy", "would overwrite the input given as --x"])
    train_fails(files, save="run/last.pt", needles=["run/last.pt", "run directory's own files"])
    train_fails(files, save="sub", needles=["sub", "is a directory"])


@pytest.mark.skipif(IS_ROOT, reason="root can read and write anything")
def test_permission_denied(files):
    os.chmod(files / "sub", 0o500)
    train_fails(files, save="sub/out.pt", needles=["sub/out.pt", "not writable"])
    os.chmod(files / "X.npy", 0)
    train_fails(files, needles=["X.npy", "cannot read"])


def test_malicious_checkpoint_refused_and_runs_no_code(files):
    marker = files / "PWNED"
    torch.save({"format": 1, "model_state": {}, "config": Payload(str(marker))}, files / "evil.pt")
    with open(files / "evil2.pt", "wb") as f:                       # a bare pickle, not a zip
        pickle.dump(Payload(str(marker)), f)
    np.save(files / "Xi.npy", make_windows(n=4)[0])
    for name in ("evil.pt", "evil2.pt"):
        proc = run_here("infer.py", "--ckpt", files / name, "--x", files / "Xi.npy")
        assert_user_error(proc, name)
        assert not marker.exists(), "unpickling ran code"
    proc = run_here("train.py", "--resume", files / "evil.pt")
    assert_user_error(proc, "evil.pt")
    assert not marker.exists()


@pytest.fixture
def ckpt(trained):
    return trained["ckpt"]             # conftest: 60 windows, FAST, 1 epoch, trained once a session


@pytest.mark.parametrize("shape, needles", [
    ((5, 4, 1, 32), ["C=3 channels", "C=4"]),
    ((5, 3, 2, 32), ["F=1 bands", "F=2"]),
    ((5, 3, 1, 1), ["T=1 frames is too short"]),
    ((5, 32), ["expected 4-D (N, C, F, T) or 3-D (C, F, T)"]),
    ((40, 3, 32), ["C=3 channels", "C=40", "(40, 3, 32) was read as one (C, F, T) window", "X[:, :, None, :]"]),
])
def test_infer_input_the_model_cannot_take(ckpt, tmp_path, shape, needles):
    np.save(tmp_path / "bad.npy", np.zeros(shape, np.float32))
    proc = run_here("infer.py", "--ckpt", ckpt, "--x", tmp_path / "bad.npy", "--out", tmp_path / "p.csv")
    assert_user_error(proc, "bad.npy", *needles)
    assert not (tmp_path / "p.csv").exists()


def test_infer_bad_checkpoints_and_outputs(ckpt, tmp_path):
    np.save(tmp_path / "X.npy", make_windows(n=6)[0])
    x = tmp_path / "X.npy"
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    assert_user_error(run_here("infer.py", "--ckpt", tmp_path / "other.pt", "--x", x), "other.pt", "not a biosig checkpoint")
    old = torch.load(ckpt, weights_only=True)
    old["format"] = 99
    torch.save(old, tmp_path / "future.pt")
    assert_user_error(run_here("infer.py", "--ckpt", tmp_path / "future.pt", "--x", x), "future.pt", "format 99",
                      "not supported")
    (tmp_path / "junk.pt").write_bytes(os.urandom(300))
    assert_user_error(run_here("infer.py", "--ckpt", tmp_path / "junk.pt", "--x", x), "junk.pt")
    assert_user_error(run_here("infer.py", "--ckpt", tmp_path / "none.pt", "--x", x), "none.pt", "not found")
    assert_user_error(run_here("infer.py", "--ckpt", ckpt, "--x", x, "--out", tmp_path / "p.txt"), "p.txt", ".csv")
    assert_user_error(run_here("infer.py", "--ckpt", ckpt, "--x", x, "--out", x), "X.npy", "overwrite the input given as --x")
    np.save(tmp_path / "y.npy", np.arange(4))
    assert_user_error(run_here("infer.py", "--ckpt", ckpt, "--x", x, "--y", tmp_path / "y.npy", "--out",
                               tmp_path / "p.csv"), "y.npy", "4 labels")
    np.save(tmp_path / "y.npy", np.arange(6))            # labels 3..5 for a 3-class model
    line = assert_user_error(run_here("infer.py", "--ckpt", ckpt, "--x", x, "--y", tmp_path / "y.npy"), "y.npy",
                             "label 5 is outside [0, 2] for the checkpoint's 3 classes")
    assert "--classes" not in line                     # a flag infer.py does not have
    assert sorted(os.listdir(tmp_path)) == ["X.npy", "future.pt", "junk.pt", "other.pt", "y.npy"]


def test_resume_bad_inputs(files, ckpt):
    assert_user_error(run_here("train.py", "--resume", ckpt), "m.pt", "not a resume checkpoint")
    assert_user_error(run_here("train.py", "--resume", files / "none.pt"), "none.pt", "not found")
    assert_user_error(run_here("train.py", "--x", files / "X.npy"), "--save")


def test_non_checkpoints_are_named_for_what_they_are(ckpt, tmp_path):
    """A text file is not 'refused: pickled Python objects' (that reads as malware): each kind of
    file that is not a checkpoint gets its own words; only a pickle naming Python objects is refused."""
    np.save(tmp_path / "X.npy", make_windows(n=4)[0])
    (tmp_path / "hello.pt").write_text("hello world, not a checkpoint\n")
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(300))
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "dir.pt").mkdir()
    raw = ckpt.read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    with open(tmp_path / "plain.pt", "wb") as f:
        pickle.dump({"weights": [1.0, 2.0]}, f)
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump(Payload(str(tmp_path / "PWNED")), f)
    expected = {"hello.pt": "not a PyTorch checkpoint", "random.pt": "not a PyTorch checkpoint",
                "empty.pt": "an empty file", "dir.pt": "a directory", "cut.pt": "truncated or damaged",
                "plain.pt": "a plain Python pickle", "evil.pt": "refused: it holds pickled Python objects",
                "X.npy": "a .npy array, not a checkpoint"}
    for name, words in expected.items():
        line = assert_user_error(run_here("infer.py", "--ckpt", tmp_path / name, "--x", tmp_path / "X.npy"), name, words)
        assert name == "evil.pt" or "refused" not in line, line
    for name in ("hello.pt", "empty.pt"):
        assert_user_error(run_here("train.py", "--resume", tmp_path / name), name, expected[name])
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_save_where_no_file_can_be_created(files):
    """Even root cannot create files in /proc: the check must try, not ask os.access."""
    train_fails(files, save=None, needles=["/proc/biosig.pt", "not writable"], extra_save="/proc/biosig.pt")


def test_a_pipe_given_as_a_npy_file_is_one_line(files):
    """`--groups <(cat groups.npy)`: a pipe cannot be read in place (was a traceback)."""
    import io
    import threading
    fifo = files / "groups.fifo"
    os.mkfifo(fifo)
    payload = io.BytesIO()
    np.save(payload, np.repeat(np.arange(6), 10))

    def feed():
        try:
            with open(fifo, "wb") as f:
                f.write(payload.getvalue())
        except BrokenPipeError:
            pass
    threading.Thread(target=feed, daemon=True).start()
    proc = run_here("train.py", "--x", files / "X.npy", "--y", files / "y.npy", "--groups", fifo, "--split", "group",
                    "--save", files / "o.pt", "--run-dir", files / "r", "--epochs", "1", *FAST)
    assert_user_error(proc, "groups.fifo", "a pipe or stream, not a file")
    assert not (files / "r").exists() and not (files / "o.pt").exists()


def test_abbreviated_flags_are_refused_with_the_closest_one(files, capsys):
    """`--epoch 1` was argparse's prefix for --epochs in train.py (a typo silently becoming another
    option), while sweep.py refused it: every parser now refuses a prefix and names the closest flag."""
    from biosig.cli.bandpower import main as bandpower
    from biosig.cli.infer import main as infer
    from biosig.cli.sweep import main as sweep
    from biosig.cli.train import main as train
    (files / "g.json").write_text('{"lr": [0.001]}')
    before = snapshot(files)
    common = ["--x", files / "X.npy", "--y", files / "y.npy", "--save", files / "o.pt", "--run-dir", files / "r"]
    main_fails(train, [*common, "--epoch", "1"], capsys, "--epoch", "did you mean --epochs?")
    main_fails(train, [*common, "--lrr", "0.1"], capsys, "--lrr", "did you mean --lr?")
    main_fails(sweep, ["--grid", files / "g.json", "--out", files / "o", "--", "--epoch", "1"], capsys,
               "--epoch", "did you mean --epochs?")
    main_fails(sweep, ["--grid", files / "g.json", "--ou", files / "o"], capsys, "--ou", "did you mean --out?")
    main_fails(infer, ["--ckpt", files / "m.pt", "--x", files / "X.npy", "--bat", "2"], capsys,
               "--bat", "did you mean --batch?")
    main_fails(bandpower, ["--x", files / "X.npy", "--fs", "64", "--out", files / "bp", "--fram", "1"], capsys,
               "--fram", "did you mean --frame?")
    assert snapshot(files) == before


def test_a_batch_larger_than_the_data_warns_and_uses_the_training_windows(files, capsys):
    """--batch 100000000 trained one step an epoch without a word. Now: one warning, the training
    windows (48 of 60) as the batch, recorded as the run's --batch everywhere, and a resume given
    the same --batch goes on with it."""
    import json
    from biosig.cli.train import main as train
    d = files
    argv = ["--x", d / "X.npy", "--y", d / "y.npy", "--save", d / "o.pt", "--run-dir", d / "r", "--no-report",
            *FAST, "--batch", "100000000"]
    code, _, err = run_main(train, argv + ["--epochs", "1"], capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: --batch 100000000 is more than the 48 training windows: using --batch 48, "
                        "one step per epoch"], err
    config = json.loads((d / "r" / "config.json").read_text())
    summary = json.loads((d / "r" / "summary.json").read_text())
    last = torch.load(d / "r" / "last.pt", weights_only=True)["resume"]
    assert (config["batch"], config["resolved"]["global_batch"], config["resolved"]["batch_given"]) == (48, 48, 100000000)
    assert summary["global_batch"] == 48 and last["args"]["batch"] == 48
    code, _, err = run_main(train, ["--resume", d / "r" / "last.pt", "--batch", "100000000", "--epochs", "2"], capsys)
    assert code == 0 and "warning:" not in err, err
    config = json.loads((d / "r" / "config.json").read_text())
    assert (config["batch"], config["resolved"]["batch_given"]) == (48, 100000000)
    assert torch.load(d / "r" / "last.pt", weights_only=True)["resume"]["epoch"] == 2
    from biosig.training.build import batch_for_data                # under DDP: each process its share of them
    assert batch_for_data(100000000, 48, 2)[0] == 48 and "(2 processes x ~24)" in batch_for_data(100000000, 48, 2)[1]
    assert batch_for_data(48, 48, 2) == (48, None)


def test_messages_name_what_was_given(files, capsys):
    """Each said something else: `--y DIR` 'X.npy: no labels'; biosig.bandpower '--frame None s';
    4 class names for 3 classes not counted; infer.py --x model.pt 'a recording'."""
    from biosig.cli.bandpower import main as bandpower
    from biosig.cli.infer import main as infer
    from biosig.cli.train import main as train
    d = files
    (d / "names4.json").write_text('["left", "right", "rest", "feet"]')
    torch.save({"weights": torch.zeros(2)}, d / "model.pt")
    np.save(d / "short.npy", make_windows(n=4, t=32)[0])
    before = snapshot(d)
    common = ["--x", d / "X.npy", "--save", d / "o.pt", "--run-dir", d / "r", "--epochs", "1", *FAST]
    main_fails(train, [*common, "--y", d / "sub"], capsys, f"{d / 'sub'}: y is a directory")
    line = main_fails(train, [*common, "--y", d / "y.npy", "--class-names", d / "names4.json"], capsys,
                      "names4.json", "4 class names for 3 classes")
    assert "0..2" in line
    line = main_fails(bandpower, ["--x", d / "short.npy", "--fs", "128", "--out", d / "bp.npy"], capsys,
                      "short.npy", "32 samples", "--frame 0.5 s at 128 Hz, the --method stft default")
    assert "None" not in line
    main_fails(infer, ["--ckpt", d / "model.pt", "--x", d / "model.pt", "--out", d / "p.csv"], capsys,
               "model.pt: --x is a checkpoint", "pass it as --ckpt")
    assert snapshot(d) == before


def test_windows_out_exists_says_how_to_go_on_and_overwrite_replaces(tmp_path, capsys):
    """An existing --out said only that it exists: now --overwrite (or another --out), and
    --overwrite replaces the windows, never a directory this tool did not write nor its inputs."""
    from biosig.cli.windows import main as windows
    rng = np.random.default_rng(0)
    np.save(tmp_path / "rec.npy", rng.standard_normal((3, 640)).astype(np.float32))
    np.save(tmp_path / "labels.npy", np.arange(640) // 160 % 2)
    cut = ["--recording", tmp_path / "rec.npy", "--fs", "64", "--length", "1", "--out", tmp_path / "win"]
    assert run_main(windows, [*cut, "--labels", tmp_path / "labels.npy"], capsys)[0] == 0
    before = snapshot(tmp_path)
    main_fails(windows, cut, capsys, "win: --out exists", "give --overwrite", "or another --out")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    main_fails(windows, [*cut[:-1], tmp_path / "other", "--overwrite"], capsys, "other", "notes.txt",
               "give another --out")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    (tmp_path / "other" / "notes.txt").unlink()
    (tmp_path / "other").rmdir()
    assert snapshot(tmp_path) == before
    code, out, err = run_main(windows, [*cut, "--length", "2", "--overwrite"], capsys)
    assert code == 0, err
    assert np.load(tmp_path / "win" / "X.npy").shape == (5, 3, 1, 128)
    assert not (tmp_path / "win" / "y.npy").exists()          # the old windows' files are gone with them
    assert sorted(os.listdir(tmp_path)) == ["labels.npy", "rec.npy", "win"]


@pytest.mark.parametrize("save, run_dir, needles", [
    ("nodir/out.pt", "run", ["nodir/out.pt", "does not exist"]),
    ("X.npy", "run", ["X.npy", "would overwrite the input given as --x"]),
    ("out.pt", "done", ["done", "already holds a run"]),
])
def test_model_auto_checks_output_paths_before_choosing(files, capsys, monkeypatch, save, run_dir, needles):
    """With the default --model auto a bad --save or --run-dir is one line before the candidates'
    cross-validation (10-20 s on real data), as with a named model."""
    import biosig.training.run
    from biosig.cli.train import main

    def choose_model(*args, **kwargs):
        raise AssertionError("--model auto cross-validated before the output paths were checked")
    monkeypatch.setattr(biosig.training.run, "choose_model", choose_model)
    (files / "done").mkdir()
    for name in ("config.json", "last.pt"):       # an earlier, finished run
        (files / "done" / name).write_text("{}")
    before = snapshot(files)
    main_fails(main, ["--x", files / "X.npy", "--y", files / "y.npy", "--save", files / save,
                      "--run-dir", files / run_dir, "--epochs", "1"], capsys, *needles)
    assert snapshot(files) == before
