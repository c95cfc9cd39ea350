"""Several inputs at their own rates (fusion) and several targets at once, through train.py ->
checkpoint -> infer.py, as a user runs them (issue 30)."""
import json

import numpy as np
import pytest
import torch

from biosig.models import MODELS
from conftest import assert_user_error, run_here, slow_after, torchrun

FUSION = sorted(n for n, m in MODELS.items() if getattr(m, "multi_input", False))


def write_two_inputs(d, n=160, seed=0, stem="", ppg_frames=64, acc_frames=32, acc_windows=None):
    """ppg (n, 1, 1, 64) at 64 Hz and acc (n, 3, 1, 32) at 32 Hz, one second each, under noise: bit a
    is in the PPG alone (a 4 or an 8 Hz wave), bit b in the accelerometer alone (a 2 Hz swing on one
    axis or another). Class y = 2a + b (4 classes): each input alone can tell two of them apart at
    best, both together all four. Also reg (n,): a + 2b plus noise."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    t_ppg, t_acc = np.arange(ppg_frames) / 64, np.arange(acc_frames) / 32
    ppg = rng.normal(0, 0.5, (n, 1, 1, ppg_frames))
    ppg[:, 0, 0] += np.sin(2 * np.pi * np.where(a, 8, 4)[:, None] * t_ppg + rng.uniform(0, 6, (n, 1)))
    acc = rng.normal(0, 0.5, (n, 3, 1, acc_frames))
    acc[np.arange(n), b, 0] += 1.5 * np.sin(2 * np.pi * 2 * t_acc + rng.uniform(0, 6, (n, 1)))
    files = {"ppg": ppg[:, :, :, :].astype(np.float32), "acc": acc[:acc_windows or n].astype(np.float32),
             "y": (2 * a + b).astype(np.int64), "reg": (a + 2 * b + rng.normal(0, 0.1, n)), "bit_a": a.astype(np.int64)}
    for name, array in files.items():
        np.save(d / f"{name}{stem}.npy", array)
    for name, fs in (("ppg", 64), ("acc", 32)):
        (d / f"{name}{stem}.signal.json").write_text(json.dumps({"fs": fs}))
    return {k: d / f"{k}{stem}.npy" for k in files}


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    d = tmp_path_factory.mktemp("two")
    return {"dir": d, "train": write_two_inputs(d), "test": write_two_inputs(d, n=80, seed=1, stem="_test")}


def inputs(files, flag="--x"):
    return [flag, f"ppg={files['ppg']}", flag, f"acc={files['acc']}"]


def test_fusion_learns_what_neither_input_can_alone(two):
    d, tr, te = two["dir"], two["train"], two["test"]
    accuracy = {}
    for name, x, x_test in (("fused", inputs(tr), inputs(te, "--x-test")),
                            ("ppg", ["--x", tr["ppg"]], ["--x-test", te["ppg"], "--model", "minirocket"]),
                            ("acc", ["--x", tr["acc"]], ["--x-test", te["acc"], "--model", "minirocket"])):
        proc = run_here("train.py", *x, "--y", tr["y"], *x_test, "--y-test", te["y"], "--save", d / f"{name}.pt",
                        "--run-dir", d / name, "--no-report")
        assert proc.returncode == 0, proc.stderr[-3000:]
        accuracy[name] = json.loads((d / name / "summary.json").read_text())["test"]["acc"]
        if name == "fused":
            assert "model: fusion-late (the default for several inputs" in proc.stdout
    # each input alone tells 2 of the 4 classes apart at best; together, all of them
    assert accuracy["fused"] > 0.85 and accuracy["ppg"] < 0.6 and accuracy["acc"] < 0.6, accuracy
    # with no --model, several inputs train the default fusion model, and the log and summary.json say why
    model = json.loads((d / "fused" / "summary.json").read_text())["model"]
    assert model["name"] == "fusion-late" and "several inputs" in model["why"]


def test_a_dropped_input_still_predicts_above_chance(two):
    from biosig.deploy.predictor import load_model_from_checkpoint
    d, tr, te = two["dir"], two["train"], two["test"]
    proc = run_here("train.py", *inputs(tr), "--y", tr["y"], "--modality-drop", "0.3", "--save", d / "drop.pt",
                    "--run-dir", d / "drop", "--no-report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    predictor = load_model_from_checkpoint(str(d / "drop.pt"))
    y = np.load(te["y"])
    both = predictor.predict({"ppg": np.load(te["ppg"]), "acc": np.load(te["acc"])})["pred"]
    ppg_only = predictor.predict({"ppg": np.load(te["ppg"])})["pred"]      # the accelerometer absent
    assert (both == y).mean() > 0.85
    # the PPG's bit is still read: 2 of 4 classes told apart (chance 0.25)
    assert (ppg_only == y).mean() > 0.4 and (ppg_only // 2 == y // 2).mean() > 0.85
    # infer.py with one input left out: the same predictions
    out = run_here("infer.py", "--ckpt", d / "drop.pt", "--x", f"ppg={te['ppg']}", "--out", d / "p.npy", "--quiet")
    assert out.returncode == 0, out.stderr
    assert np.array_equal(np.load(d / "p.npy").argmax(1), ppg_only)


@pytest.mark.parametrize("model, task", slow_after([(m, t) for m in FUSION for t in ("classification", "regression")]))
def test_fusion_model_trains_checkpoints_and_infers(two, tmp_path, model, task):
    tr = two["train"]
    y = tr["y"] if task == "classification" else tr["reg"]
    encoder = ["--encoder", "tcn"] if model != "fusion-attention" else []
    proc = run_here("train.py", *inputs(tr), "--y", y, "--task", task, "--model", model, *encoder, "--epochs", "2",
                    "--batch", "32", "--save", tmp_path / "m.pt", "--run-dir", tmp_path / "run", "--no-report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    assert ckpt["config"]["name"] == model and set(ckpt["example_input_shape"]) == {"ppg", "acc"}
    assert ckpt["signal"]["inputs"]["acc"]["fs"] == 32
    inf = run_here("infer.py", "--ckpt", tmp_path / "m.pt", *inputs(tr), "--y", y, "--out", tmp_path / "p.npy",
                   "--quiet")
    assert inf.returncode == 0, inf.stderr[-3000:]
    from biosig.deploy.predictor import load_model_from_checkpoint
    expected = load_model_from_checkpoint(str(tmp_path / "m.pt")).predict(
        {"ppg": np.load(tr["ppg"]), "acc": np.load(tr["acc"])})["values"]
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, rtol=1e-4, atol=1e-5)


def test_two_targets_one_network(two, tmp_path):
    tr, te = two["train"], two["test"]
    targets = ["--y", f"cls={tr['y']}", "--y", f"reg={tr['reg']}", "--task", "cls=classification",
               "--task", "reg=regression"]
    proc = run_here("train.py", *inputs(tr), *targets, "--loss-weight", "cls=1,reg=0.5", "--monitor", "cls:val_acc",
                    *inputs(te, "--x-test"), "--y-test", f"cls={te['y']}", "--y-test", f"reg={te['reg']}",
                    "--save", tmp_path / "m.pt", "--run-dir", tmp_path / "run", "--no-report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["monitor"] == "cls:val_acc" and summary["test"]["cls:acc"] > 0.85
    assert summary["test"]["reg:r2"] > 0.8
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"val_loss", "cls:val_acc", "cls:val_loss", "reg:val_mae", "reg:train_mae"} <= set(row)
    assert "cls: acc=" in proc.stdout and "reg: mae=" in proc.stdout
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    assert ckpt["task"]["name"] == "multi" and ckpt["task"]["weights"] == {"cls": 1.0, "reg": 0.5}
    inf = run_here("infer.py", "--ckpt", tmp_path / "m.pt", *inputs(te), "--y", f"cls={te['y']}",
                   "--out", tmp_path / "p.csv", "--quiet")
    assert inf.returncode == 0, inf.stderr
    assert "cls: accuracy=" in inf.stdout
    header = (tmp_path / "p.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["sample", "cls:pred", "cls:score"] and "reg:pred" in header
    npy = run_here("infer.py", "--ckpt", tmp_path / "m.pt", *inputs(te), "--out", tmp_path / "p.npy", "--quiet")
    assert npy.returncode == 0 and np.load(tmp_path / "p.cls.npy").shape == (80, 4)
    assert np.load(tmp_path / "p.reg.npy").shape == (80,)


def test_one_input_several_targets_and_cross_validation(two, tmp_path):
    tr = two["train"]
    proc = run_here("train.py", "--x", tr["ppg"], "--y", f"a={tr['bit_a']}", "--y", f"reg={tr['reg']}",
                    "--task", "a=classification", "--task", "reg=regression", "--folds", "3", "--fold", "0",
                    "--save", tmp_path / "m.pt", "--run-dir", tmp_path / "run", "--no-report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["split"]["folds"]["k"] == 3 and summary["best_metrics"]["a:acc"] > 0.85
    assert "one minirocket for them all" in proc.stdout


def test_resume_of_a_two_target_fusion_run_is_exact(two, tmp_path):
    tr = two["train"]
    args = [*inputs(tr), "--y", f"cls={tr['y']}", "--y", f"reg={tr['reg']}", "--task", "cls=classification",
            "--task", "reg=regression", "--model", "fusion-late", "--encoder", "tcn", "--modality-drop", "0.2",
            "--augment", "shift", "scale", "--batch", "32", "--deterministic", "--no-report"]
    straight = run_here("train.py", *args, "--epochs", "3", "--save", tmp_path / "s.pt", "--run-dir", tmp_path / "s")
    first = run_here("train.py", *args, "--epochs", "1", "--save", tmp_path / "r.pt", "--run-dir", tmp_path / "r")
    resumed = run_here("train.py", "--resume", tmp_path / "r" / "last.pt", "--epochs", "3")
    for proc in (straight, first, resumed):
        assert proc.returncode == 0, proc.stderr[-3000:]
    a = torch.load(tmp_path / "s" / "last.pt", weights_only=True)["model_state"]
    b = torch.load(tmp_path / "r" / "last.pt", weights_only=True)["model_state"]
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_two_processes_match_one_on_a_fusion_run(two, tmp_path):
    tr = two["train"]
    args = [*inputs(tr), "--y", f"cls={tr['y']}", "--y", f"reg={tr['reg']}", "--task", "cls=classification",
            "--task", "reg=regression", "--model", "fusion-late", "--encoder", "tcn", "--drop", "0",
            "--deterministic", "--batch", "30", "--epochs", "1", "--no-report"]
    # 129 training windows: the last global batch (9) splits 5 + 4 (one of 1 would be dropped by
    # two processes and trained on by one)
    one = run_here("train.py", *args, "--save", tmp_path / "one.pt", "--run-dir", tmp_path / "one")
    two_procs = torchrun(2, *args, "--save", tmp_path / "two.pt", "--run-dir", tmp_path / "two")
    assert one.returncode == 0, one.stderr[-3000:]
    assert two_procs.returncode == 0, two_procs.stderr[-3000:]
    a = torch.load(tmp_path / "one" / "last.pt", weights_only=True)["model_state"]
    b = torch.load(tmp_path / "two" / "last.pt", weights_only=True)["model_state"]
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)


def refused(tmp_path, *args, needles=()):
    proc = run_here("train.py", *args, "--save", tmp_path / "m.pt", "--run-dir", tmp_path / "run")
    assert_user_error(proc, *needles)
    assert not (tmp_path / "run").exists() and not (tmp_path / "m.pt").exists()


def test_misaligned_inputs_and_contradictions_are_one_line(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    ok = write_two_inputs(d, n=40)
    short = write_two_inputs(d, n=40, stem="_short", acc_windows=39)
    longer = write_two_inputs(d, n=40, stem="_long", acc_frames=40)      # 1.25 s of acc beside 1 s of ppg
    refused(tmp_path, *inputs(short), "--y", ok["y"], needles=("the same windows", "acc_short.npy has 39"))
    refused(tmp_path, *inputs(longer), "--y", ok["y"], needles=("differ in duration", "1.25 s"))
    refused(tmp_path, *inputs(ok), "--y", ok["y"], "--fs", "ppg=32", needles=("--fs 32 contradicts", "ppg.signal.json"))
    refused(tmp_path, *inputs(ok), "--y", ok["y"], "--fs", "ppx=64", needles=("--fs ppx=64", "not an input"))
    refused(tmp_path, *inputs(ok), "--y", ok["y"], "--fs", "64", needles=("--fs 64", "NAME=HZ"))
    refused(tmp_path, *inputs(ok), "--y", ok["y"], "--model", "minirocket", needles=("takes one input", "fusion-late"))
    refused(tmp_path, "--x", ok["ppg"], "--y", ok["y"], "--model", "fusion-late", needles=("--x NAME=PATH",))
    refused(tmp_path, *inputs(ok), "--y", f"a={ok['y']}", "--task", "b=classification", needles=("--task and --y",))
    refused(tmp_path, *inputs(ok), "--y", ok["y"], "--loss-weight", "a=1", needles=("--loss-weight",))
    refused(tmp_path, *inputs(ok), "--y", f"a={ok['y']}", "--y", f"r={ok['reg']}", "--task", "a=classification",
            "--task", "r=regression", "--monitor", "val_acc", needles=("--monitor val_acc", "a:val_acc"))
    refused(tmp_path, "--x", f"ppg={ok['ppg']}", "--x", ok["acc"], "--y", ok["y"], needles=("NAME=VALUE",))


def test_infer_refuses_a_missing_or_unknown_input(two, tmp_path):
    d, te = two["dir"], two["test"]
    ckpt = d / "fused.pt"
    if not ckpt.exists():                  # trained by the first test in this module; alone: train it here
        assert run_here("train.py", *inputs(two["train"]), "--y", two["train"]["y"], "--save", ckpt, "--run-dir",
                        tmp_path / "run", "--no-report").returncode == 0
    np.save(tmp_path / "acc_long.npy", np.zeros((80, 3, 1, 40), np.float32))          # T=40, not 32
    (tmp_path / "acc_long.signal.json").write_text(json.dumps({"fs": 32}))
    for args, needles in (((f"ppg={te['ppg']}",), (f"{ckpt}: input acc is missing", "--modality-drop")),
                          ((f"ppg={te['ppg']}", f"acc={tmp_path / 'acc_long.npy'}"),
                           (f"{tmp_path / 'acc_long.npy'}: input acc", "(3, 1, 40)")),
                          ((f"ppg={te['ppg']}", f"gyro={te['acc']}"), ("--x gyro=", "not an input")),
                          ((str(te["ppg"]),), ("--x NAME=PATH",))):
        proc = run_here("infer.py", "--ckpt", ckpt, *[w for a in args for w in ("--x", a)], "--out",
                        tmp_path / "p.npy", "--quiet")
        assert_user_error(proc, *needles)
        assert not (tmp_path / "p.npy").exists()


def test_python_api_takes_several_inputs_as_arrays(two, tmp_path):
    import biosig
    from biosig.errors import UserError
    tr = two["train"]
    x = {"ppg": np.load(tr["ppg"]), "acc": np.load(tr["acc"])}
    summary = biosig.train(x=x, y=np.load(tr["y"]), fs={"ppg": 64, "acc": 32}, save=tmp_path / "m.pt",
                           run_dir=tmp_path / "run", no_report=True)
    assert summary["best_metrics"]["acc"] > 0.85
    with pytest.raises(UserError, match=r"train\(x.acc=<array>\) has 5"):
        biosig.train(x={"ppg": x["ppg"], "acc": x["acc"][:5]}, y=np.load(tr["y"]), fs={"ppg": 64, "acc": 32},
                     save=tmp_path / "n.pt", run_dir=tmp_path / "run2")
    assert not (tmp_path / "run2").exists()


@pytest.mark.slow
def test_a_sweep_over_a_two_target_fusion_run(two, tmp_path):
    tr = two["train"]
    (tmp_path / "grid.json").write_text(json.dumps({"loss-weight": ["a=1,r=1", "a=1,r=0.1"]}))
    proc = run_here("sweep.py", "--grid", tmp_path / "grid.json", "--out", tmp_path / "sw", "--metric", "a:val_acc",
                    "--", *inputs(tr), "--y", f"a={tr['bit_a']}", "--y", f"r={tr['reg']}", "--task",
                    "a=classification", "--task", "r=regression")
    assert proc.returncode == 0, proc.stderr[-3000:]
    best = json.loads((tmp_path / "sw" / "best.json").read_text())
    assert best["metric"] == "a:val_acc" and best["mean"] > 0.85
    assert f"ppg={tr['ppg']}" in best["argv"]


def test_several_inputs_from_parquet_tables(two, tmp_path):
    pytest.importorskip("pyarrow")
    tr = two["train"]
    for name, labels in (("ppg", ["--y", tr["y"]]), ("acc", [])):
        conv = run_here("biosig.convert", "--x", tr[name], *labels, "--out", tmp_path / f"{name}.parquet")
        assert conv.returncode == 0, conv.stderr
    # one table per input; the targets from a .npy, or a label column of the first table
    proc = run_here("train.py", "--x", f"ppg={tmp_path / 'ppg.parquet'}", "--x", f"acc={tmp_path / 'acc.parquet'}",
                    "--y", "cls=label", "--y", f"reg={tr['reg']}", "--task", "cls=classification", "--task",
                    "reg=regression", "--save", tmp_path / "m.pt", "--run-dir", tmp_path / "run", "--no-report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best_metrics"]["cls:acc"] > 0.85
    # no --y: the first table's label column, as with one table
    proc = run_here("train.py", "--x", f"ppg={tmp_path / 'ppg.parquet'}", "--x", f"acc={tmp_path / 'acc.parquet'}",
                    "--save", tmp_path / "n.pt", "--run-dir", tmp_path / "run2", "--no-report")
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("name", ["fusion-late", "fusion-early"])
def test_the_export_form_of_a_minirocket_fusion_is_the_model(name):
    """export_module() (what biosig.export traces: MiniRocket's own export form inside) gives the
    model's numbers; tests/test_export_fusion.py writes and loads such files."""
    from biosig.models import build_model
    from biosig.models.fusion import encoder_config
    mods = {"ppg": {"n_elec": 1, "n_bands": 1, "n_times": 64}, "acc": {"n_elec": 3, "n_bands": 1, "n_times": 32}}
    small = {k: {**encoder_config("minirocket", m["n_elec"], m["n_bands"], m["n_times"], 0.1), "features": 168}
             for k, m in mods.items()}
    if name == "fusion-early":
        small = {"stack": {**encoder_config("minirocket", 4, 1, 64, 0.1), "features": 168}}
    model = build_model({"name": name, "modalities": mods, "n_outputs": 3, "encoders": small})
    torch.manual_seed(0)
    x = {"ppg": torch.randn(6, 1, 1, 64), "acc": torch.randn(6, 3, 1, 32)}
    model.fit_data(x)
    model.eval()
    torch.testing.assert_close(model.export_module()(x), model(x), rtol=0, atol=1e-6)
