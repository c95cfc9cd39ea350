"""python -m biosig.export: the exported file, run by onnxruntime or torch.export, gives what
infer.py --out preds.npy gives (preprocessing baked in), at any batch size; bad input is one line."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ENV, ROOT, assert_user_error, make_windows, run_here, slow_after

MODELS = {   # small and fast; tcn also gets the per-window z-score, eegnet is built for one T
    "tcn": ["--model", "tcn", "--standardize", "--normalize", "--model-kwargs", "channels=8", "levels=2"],
    "eegnet": ["--model", "eegnet", "--standardize", "--model-kwargs", "kernel=16"],
    "tcn-stream": ["--model", "tcn", "--standardize", "--model-kwargs", "channels=8", "levels=2"],
}
TRAINED = {}


def export(*args, env=None):
    """python -m biosig.export ARGS: in-process, or as a process in another environment `env`."""
    if env is None:
        return run_here("biosig.export", *args)
    return subprocess.run([sys.executable, "-m", "biosig.export", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env=env)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Windows in raw units far from 0 mean / unit std (what --standardize must undo), F=2 bands."""
    d = tmp_path_factory.mktemp("export")
    X, y = make_windows(n=96, c=3, f=2, t=64)
    X = X * 40 + np.arange(1, 7, dtype=np.float32).reshape(1, 3, 2, 1) * 10
    np.save(d / "X.npy", X)
    np.save(d / "y.npy", y)
    np.save(d / "X_few.npy", X[:9])
    return {"dir": d, "X": X}


def trained(data, model):
    """(checkpoint path, infer.py --out preds.npy on X_few.npy) for a classification `model`, trained once."""
    if model not in TRAINED:
        d = data["dir"]
        proc = run_here("train.py", "--x", d / "X.npy", "--y", d / "y.npy", *MODELS[model], "--epochs", "1",
                        "--batch", "32", "--save", d / f"{model}.pt", "--run-dir", d / f"run_{model}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        inf = run_here("infer.py", "--ckpt", d / f"{model}.pt", "--x", d / "X_few.npy", "--out", d / f"{model}.npy",
                       "--quiet")
        assert inf.returncode == 0, inf.stderr[-3000:]
        TRAINED[model] = (d / f"{model}.pt", np.load(d / f"{model}.npy"))
    return TRAINED[model]


@pytest.mark.slow
def test_onnx_gives_infer_py_predictions_at_any_batch_size(data):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    ckpt, preds = trained(data, "tcn")
    out = data["dir"] / "tcn.onnx"
    proc = export("--ckpt", ckpt, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "checked against PyTorch on 2 random batches: max |diff|" in proc.stdout and "onnxruntime" in proc.stdout
    assert "train-split standardization + per-window z-score" in proc.stdout, proc.stdout
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (x,), (values,) = session.get_inputs(), session.get_outputs()
    assert x.name == "x" and values.name == "values"
    assert isinstance(x.shape[0], str) and x.shape[1:] == [3, 2, 64]        # batch dynamic, the rest fixed
    X = data["X"][:9]
    for part in (slice(0, 7), slice(7, 8)):                                  # batches of 7 and 1
        got = session.run(["values"], {"x": X[part]})[0]
        assert got.shape == preds[part].shape == (len(X[part]), 3)
        np.testing.assert_allclose(got, preds[part], atol=1e-4, rtol=0)
    assert not np.allclose(preds[0], preds[1], atol=1e-3)                   # the check compares something


@pytest.mark.parametrize("model", slow_after(["tcn", "eegnet"]))
def test_pt2_gives_infer_py_predictions_at_any_batch_size(data, model):
    ckpt, preds = trained(data, model)
    out = data["dir"] / f"{model}.pt2"
    proc = export("--ckpt", ckpt, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "max |diff|" in proc.stdout and "(torch.export" in proc.stdout and not proc.stderr.strip(), proc.stderr
    program = torch.export.load(str(out)).module()
    X = torch.from_numpy(data["X"][:9])
    for part in (slice(0, 5), slice(5, 6)):                                  # batches of 5 and 1
        got = program(X[part]).detach().numpy()
        np.testing.assert_allclose(got, preds[part], atol=1e-4, rtol=0)


@pytest.mark.slow
def test_step_export_decodes_a_recording_frame_by_frame_as_infer_py_stream(data):
    """--step: the exported per-frame step, run from zero state one frame at a time by onnxruntime,
    gives infer.py --stream's probabilities (eeg2arm, a growing key/value cache, is refused: below)."""
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    ckpt, _ = trained(data, "tcn-stream")
    d = data["dir"]
    recording = np.concatenate(list(data["X"][:3]), -1)                  # (3, 2, 192)
    np.save(d / "recording.npy", recording)
    proc = export("--ckpt", ckpt, "--out", d / "step.onnx", "--step")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "checked against PyTorch frame by frame: max |diff|" in proc.stdout
    stream = run_here("infer.py", "--ckpt", ckpt, "--stream", "--x", d / "recording.npy", "--context", "all",
                      "--out", d / "stream.npy", "--quiet")
    assert stream.returncode == 0, stream.stderr[-2000:]
    session = ort.InferenceSession(str(d / "step.onnx"), providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    state = [np.zeros((1, *i.shape[1:]), np.float32) for i in inputs[1:]]
    got = []
    for t in range(recording.shape[-1]):
        values, *state = session.run(None, {"x": recording[None, ..., t:t + 1], **dict(zip([i.name for i in inputs[1:]], state))})
        got.append(values[0])
    assert np.abs(np.array(got) - np.load(d / "stream.npy")[0]).max() < 1e-4


def test_step_export_refuses_a_model_with_a_growing_key_value_cache(data):
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    d = data["dir"]
    model = d / "eeg2arm.pt"
    proc = run_here("train.py", "--x", d / "X.npy", "--y", d / "y.npy", "--model", "eeg2arm", "--frame-embed", "16",
                    "--layers", "1", "--epochs", "1", "--save", model, "--run-dir", d / "run_eeg2arm")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_user_error(export("--ckpt", model, "--out", d / "e.onnx", "--step"), "eeg2arm", "key/value cache")
    assert not (d / "e.onnx").exists()


def test_a_wrong_export_is_caught_before_the_file_appears(data, monkeypatch):
    from biosig.deploy import export as exporter
    from biosig.cli.export import main as export_main
    ckpt, _ = trained(data, "tcn")
    right = exporter.Deployed.forward
    monkeypatch.setattr(exporter.Deployed, "forward", lambda module, x: right(module, x) + 1e-3)
    out = data["dir"] / "wrong.pt2"
    with pytest.raises(AssertionError, match=r"max \|diff\| 0.001 to PyTorch on a batch of 3"):
        export_main(["--ckpt", str(ckpt), "--out", str(out)])
    assert not out.exists() and not [p for p in os.listdir(data["dir"]) if p.startswith(".wrong")]


def test_bad_input_is_one_line_and_writes_nothing(data, tmp_path):
    from biosig import checkpoint, normalize
    from biosig.models import build_model
    from biosig.tasks import TASKS, network_state
    ckpt, _ = trained(data, "tcn")
    assert_user_error(export("--ckpt", ckpt, "--out", tmp_path / "model.txt"), "model.txt", ".onnx", ".pt2")
    # a pretraining checkpoint (a tcn and its decoder, as train.py --task pretrain saves them)
    model = build_model({"name": "tcn", "n_elec": 3, "n_bands": 2, "n_outputs": 64, "drop": 0.1, "channels": 8,
                         "levels": 2, "kernel": 7})
    task = TASKS["pretrain"]()
    net = task.network(model, (1, 3, 2, 64))
    checkpoint.atomic_save(checkpoint.model_payload(model, task, (1, 3, 2, 64), normalize.make_spec(), 1, {},
                                                    task_state=network_state(net, model)), tmp_path / "pre.pt")
    assert_user_error(export("--ckpt", tmp_path / "pre.pt", "--out", tmp_path / "pre.onnx"), "pre.pt",
                      "pretraining", "nothing to deploy")
    # onnx/onnxscript missing: the pip command, before anything is read
    (tmp_path / "blocked" / "onnxscript").mkdir(parents=True)
    (tmp_path / "blocked" / "onnxscript" / "__init__.py").write_text("raise ImportError('not installed')\n")
    env = dict(ENV, PYTHONPATH=os.pathsep.join([str(tmp_path / "blocked"), ROOT]))
    assert_user_error(export("--ckpt", ckpt, "--out", tmp_path / "m.onnx", env=env), "pip install onnx onnxscript")
    assert sorted(os.listdir(tmp_path)) == ["blocked", "pre.pt"]


@pytest.mark.slow
def test_a_band_power_model_exports_taking_the_raw_samples_infer_py_takes(tmp_path, capsys):
    """The README's recordings path: raw windows of Fz, Cz, Pz -> --log band power -> tcn --standardize.
    The exported .onnx takes raw samples (the band power is computed inside) and gives infer.py's
    predictions on raw windows; --step takes one band-power frame and says so; both files describe
    their input in the metadata entry "biosig.input"."""
    import json
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    from biosig.cli.bandpower import main as bandpower
    from biosig.cli.infer import main as infer
    from biosig.cli.export import main as exporter
    fs, rng = 128, np.random.default_rng(0)
    y = np.arange(64) % 2
    raw = rng.normal(size=(64, 3, 1, 256)) * 1e-5 + 2e-3                    # volts, with a DC offset
    tt = np.arange(256) / fs
    raw[y == 0, 0, 0] += 2e-5 * np.sin(2 * np.pi * 10 * tt)                # class 0: alpha on Fz; 1: beta on Pz
    raw[y == 1, 2, 0] += 2e-5 * np.sin(2 * np.pi * 20 * tt)
    raw = raw.astype(np.float32)
    np.save(tmp_path / "raw.npy", raw)
    np.save(tmp_path / "y.npy", y)
    (tmp_path / "raw.signal.json").write_text(json.dumps({"fs": fs, "channels": ["Fz", "Cz", "Pz"], "units": "V"}))
    bandpower(["--x", str(tmp_path / "raw.npy"), "--fs", str(fs), "--out", str(tmp_path / "bands.npy"), "--log"])
    proc = run_here("train.py", "--x", tmp_path / "bands.npy", "--y", tmp_path / "y.npy", "--model", "tcn", "--standardize",
                    "--model-kwargs", "channels=8", "levels=2", "--epochs", "2", "--save", tmp_path / "bp.pt",
                    "--run-dir", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.save(tmp_path / "new.npy", raw[:9, [2, 0, 1]])                       # raw windows, Pz first, as infer.py takes
    infer(["--ckpt", str(tmp_path / "bp.pt"), "--x", str(tmp_path / "new.npy"), "--fs", str(fs), "--channel-names",
           "Pz,Fz,Cz", "--out", str(tmp_path / "preds.npy"), "--quiet"])
    preds = np.load(tmp_path / "preds.npy")
    capsys.readouterr()

    exporter(["--ckpt", str(tmp_path / "bp.pt"), "--out", str(tmp_path / "bp.onnx"), "--threads", "1"])
    out = capsys.readouterr().out
    wrote = next(line for line in out.splitlines() if line.startswith("wrote "))
    assert wrote.endswith("| threads 1 (--threads)"), out        # the count it chose, in its summary line
    assert "input  x      (batch, 3, 1, 256)" in out and "raw samples at 128 Hz, channels Fz,Cz,Pz in this order" in out
    assert "band power computed inside: delta 1-4 Hz" in out and "log10" in out, out
    session = ort.InferenceSession(str(tmp_path / "bp.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["values"], {"x": raw[:9]})[0]                        # the same windows in Fz, Cz, Pz order
    np.testing.assert_allclose(got, preds, atol=1e-4, rtol=0)
    assert not np.allclose(preds[0], preds[1], atol=1e-3)
    described = json.loads(session.get_modelmeta().custom_metadata_map["biosig.input"])
    assert described["kind"] == "raw samples" and described["shape"] == ["batch", 3, 1, 256]
    assert described["channels"] == ["Fz", "Cz", "Pz"] and described["fs"] == fs
    assert described["bandpower"]["log"] is True and described["bandpower"]["frame"] == 64

    exporter(["--ckpt", str(tmp_path / "bp.pt"), "--out", str(tmp_path / "step.onnx"), "--step", "--threads", "1"])
    out = capsys.readouterr().out
    assert next(line for line in out.splitlines() if line.startswith("wrote ")).endswith("| threads 1 (--threads)")
    assert "x (batch, 3, 5, 1) one band-power frame, channels Fz,Cz,Pz in this order" in out, out
    assert "frames of 64 samples (0.5 s) every 32 (0.25 s) at 128 Hz, log10" in out and "raw frame" not in out
    session = ort.InferenceSession(str(tmp_path / "step.onnx"), providers=["CPUExecutionProvider"])
    described = json.loads(session.get_modelmeta().custom_metadata_map["biosig.input"])
    assert described["kind"] == "band-power frame" and described["shape"] == ["batch", 3, 5, 1]
