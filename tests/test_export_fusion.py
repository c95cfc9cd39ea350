"""python -m biosig.export of a checkpoint of several inputs or several targets: the file takes one
input per modality (named by it, each with its own preprocessing baked in) and gives one output per
target (named by it), what Predictor.predict gives, at any batch size; --step is one line."""
import json

import numpy as np
import pytest
import torch

from conftest import assert_user_error, run_here, slow_after

TCN = ["--model", "fusion-late", "--encoder", "tcn"]
RUNS = {   # two inputs of different rates and channels
    "late": ["--y", "act.npy", "--task", "classification", "--standardize", *TCN],
    "multi": ["--y", "hr=hr.npy", "--y", "act=act.npy", "--task", "hr=regression", "--task", "act=classification", *TCN],
    "attention": ["--y", "act.npy", "--model", "fusion-attention"],
}
TRAINED = {}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """60 windows: ppg (N, 1, 1, 64) at 64 Hz whose pulse rate is hr, acc (N, 3, 1, 32) at 32 Hz in g,
    far from 0 mean, whose level is the activity class act."""
    d = tmp_path_factory.mktemp("export_fusion")
    rng = np.random.default_rng(0)
    n, t = 60, np.arange(64) / 64
    act = np.arange(n) % 2
    hr = rng.uniform(50, 110, n).astype(np.float32)
    ppg = np.sin(2 * np.pi * (hr / 60)[:, None] * t)[:, None, None] + 0.3 * rng.standard_normal((n, 1, 1, 64))
    acc = 9.8 + 2.0 * act[:, None, None, None] + rng.standard_normal((n, 3, 1, 32))
    arrays = {"ppg": ppg.astype(np.float32), "acc": acc.astype(np.float32), "act": act, "hr": hr}
    for name, a in arrays.items():
        np.save(d / f"{name}.npy", a)
    (d / "ppg.signal.json").write_text(json.dumps({"fs": 64}))
    (d / "acc.signal.json").write_text(json.dumps({"fs": 32, "units": "g"}))
    return {"dir": d, **arrays}


def trained(data, run):
    """The checkpoint of `run` (RUNS) trained once, one epoch."""
    if run not in TRAINED:
        d = data["dir"]
        proc = run_here("train.py", "--x", "ppg=ppg.npy", "--x", "acc=acc.npy", *RUNS[run],
                        "--epochs", "1", "--batch", "16", "--save", d / f"{run}.pt",
                        "--run-dir", d / f"run_{run}", cwd=d)
        assert proc.returncode == 0, proc.stderr[-3000:]
        TRAINED[run] = d / f"{run}.pt"
    return TRAINED[run]


def predicted(ckpt, data, part):
    """Predictor.predict's values of windows `part`: {output name: (B, ...)}."""
    from biosig.inference import load_model_from_checkpoint
    pred = load_model_from_checkpoint(str(ckpt)).predict({"ppg": data["ppg"][part], "acc": data["acc"][part]})
    return {k.split(":")[0] if ":" in k else k: v for k, v in pred.items() if k.endswith("values")}


# the default model (MiniRocket encoders) takes a minute to trace: its export form is checked in-process
# (tests/test_fusion.py), the file by the other runs
@pytest.mark.parametrize("run", slow_after(["multi", "late", "attention"], keep=2))
def test_pt2_takes_each_input_by_name_and_gives_every_target(data, run):
    ckpt = trained(data, run)
    out = data["dir"] / f"{run}.pt2"
    proc = run_here("biosig.export", "--ckpt", ckpt, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs = ["hr", "act"] if run == "multi" else ["values"]
    assert f"every output ({', '.join(outputs)})" in proc.stdout and "(torch.export" in proc.stdout, proc.stdout
    assert "input  ppg" in proc.stdout and "at 32 Hz" in proc.stdout and "in g" in proc.stdout
    program = torch.export.load(str(out))
    assert list(program.graph_signature.user_inputs) == ["ppg", "acc"]
    module = program.module()
    for part in (slice(0, 7), slice(7, 8)):                                   # batches of 7 and 1
        got = module(torch.from_numpy(data["ppg"][part]), torch.from_numpy(data["acc"][part]))
        got = got if isinstance(got, dict) else {"values": got}
        want = predicted(ckpt, data, part)
        assert list(got) == outputs and set(want) == set(outputs)
        for name in outputs:
            np.testing.assert_allclose(got[name].detach().numpy(), want[name], atol=1e-4, rtol=1e-6)
    first = predicted(ckpt, data, slice(0, 2))[outputs[-1]]
    assert np.abs(first[0] - first[1]).max() > 1e-5                           # the comparison compares something


@pytest.mark.parametrize("run", ["multi"])
def test_onnx_inputs_outputs_and_metadata_are_named(data, run):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    ckpt = trained(data, run)
    out = data["dir"] / f"{run}.onnx"
    proc = run_here("biosig.export", "--ckpt", ckpt, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "max |diff|" in proc.stdout and "onnxruntime" in proc.stdout, proc.stdout
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    inputs, outputs = session.get_inputs(), session.get_outputs()
    assert [i.name for i in inputs] == ["ppg", "acc"]
    assert isinstance(inputs[0].shape[0], str) and inputs[0].shape[0] == inputs[1].shape[0]          # one batch
    assert inputs[0].shape[1:] == [1, 1, 64] and inputs[1].shape[1:] == [3, 1, 32]
    names = ["hr", "act"] if run == "multi" else ["values"]
    assert [o.name for o in outputs] == names
    for part in (slice(0, 5), slice(5, 6)):
        got = session.run(None, {"ppg": data["ppg"][part], "acc": data["acc"][part]})
        want = predicted(ckpt, data, part)
        for name, values in zip(names, got):
            np.testing.assert_allclose(values, want[name], atol=1e-4, rtol=1e-6)
    meta = session.get_modelmeta().custom_metadata_map
    described = json.loads(meta["biosig.inputs"])
    assert list(described) == ["ppg", "acc"] and described["ppg"]["fs"] == 64 and described["acc"]["units"] == "g"
    assert described["acc"]["shape"] == ["batch", 3, 1, 32]
    if run == "multi":
        targets = json.loads(meta["biosig.outputs"])
        assert targets == {"hr": {"shape": ["batch"], "task": "regression"},
                           "act": {"shape": ["batch", 2], "task": "classification"}}


def test_one_input_with_two_targets_keeps_x_and_names_each_output(data):
    """One input (ppg alone), two targets: input "x" as before, outputs "hr" and "act"."""
    d = data["dir"]
    proc = run_here("train.py", "--x", "ppg.npy", "--y", "hr=hr.npy", "--y", "act=act.npy", "--task", "hr=regression",
                    "--task", "act=classification", "--model", "tcn", "--model-kwargs", "channels=8", "levels=2",
                    "--epochs", "1", "--save", d / "ppg_only.pt", "--run-dir", d / "run_ppg_only", cwd=d)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_here("biosig.export", "--ckpt", d / "ppg_only.pt", "--out", d / "ppg_only.pt2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "output hr " in proc.stdout and "preds.act.npy" in proc.stdout, proc.stdout
    program = torch.export.load(str(d / "ppg_only.pt2"))
    assert list(program.graph_signature.user_inputs) == ["x"]
    from biosig.inference import load_model_from_checkpoint
    want = load_model_from_checkpoint(str(d / "ppg_only.pt")).predict(data["ppg"][:6])
    got = program.module()(torch.from_numpy(data["ppg"][:6]))
    assert list(got) == ["hr", "act"]
    for name in got:
        np.testing.assert_allclose(got[name].detach().numpy(), want[f"{name}:values"], atol=1e-4, rtol=1e-6)


def test_a_wrong_output_is_caught_before_the_file_appears(data, monkeypatch):
    from biosig.cli.export import main as export_main
    from biosig.deploy import modules
    ckpt = trained(data, "multi")
    right = modules.DeployedSeveral.forward

    def wrong(module, *xs):                                                   # act right, hr off by 0.1
        out = right(module, *xs)
        return {**out, "hr": out["hr"] + 0.1}
    monkeypatch.setattr(modules.DeployedSeveral, "forward", wrong)
    out = data["dir"] / "wrong.pt2"
    with pytest.raises(AssertionError, match=r"output hr: max \|diff\| 0.1 to PyTorch on a batch of 3"):
        export_main(["--ckpt", str(ckpt), "--out", str(out)])
    assert not out.exists()


def test_step_of_several_inputs_is_one_line(data):
    ckpt = trained(data, "late")
    out = data["dir"] / "step.pt2"
    assert_user_error(run_here("biosig.export", "--ckpt", ckpt, "--out", out, "--step"), "--step",
                      "several inputs (ppg, acc)")
    assert not out.exists()
