"""Real-time decoding: the steppers equal forward_seq for any chunking, a bounded context equals
forward_seq over the frames it reports, the hysteresis switches when it should, and infer.py
--stream / --lsl decode a recording and a live stream as the offline model does."""
import csv
import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from biosig.models import build_model
from biosig.deploy.streamer import Hysteresis, Streamer
from conftest import ENV, FAST, ROOT, assert_user_error, make_windows, run_here

CHUNKINGS = {"one frame at a time": [1], "odd sizes": [3, 7, 1, 5, 2], "all at once": [10 ** 6]}


def stepped(x, sizes, push):
    """Feed x (..., T) in chunks of the cycling `sizes`; concatenate what comes back."""
    outs, at, i = [], 0, 0
    while at < x.shape[-1]:
        n = sizes[i % len(sizes)]
        outs.append(push(x[..., at:at + n]))
        at, i = at + n, i + 1
    return outs


def random_model(name, bands):
    """An eval-mode model with random weights and BatchNorm statistics (so folding them is tested)."""
    torch.manual_seed(0)
    config = {"eeg2arm": dict(frame_embed=32, n_heads=2, cnn_time_pool=2), "tcn": dict(channels=8, levels=3, kernel=3)}
    model = build_model(dict(name=name, n_elec=3, n_bands=bands, n_outputs=4, **config[name]))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
            m.weight.data.normal_()
            m.bias.data.normal_()
    return model.eval()


@pytest.mark.parametrize("name,bands", [("eeg2arm", 4), ("eeg2arm", 1), ("tcn", 2)])
@pytest.mark.parametrize("chunking", list(CHUNKINGS))
def test_stepper_equals_forward_seq_for_any_chunking(name, bands, chunking):
    model = random_model(name, bands)
    x = torch.randn(2, 3, bands, 151)          # > 64 output frames: the cache grows
    with torch.no_grad():
        full = model.forward_seq(x)
    stepper = model.stepper()
    out = torch.cat(stepped(x, CHUNKINGS[chunking], stepper.step), 1)
    assert out.shape == full.shape
    assert (out - full).abs().max() < 1e-5


@pytest.mark.parametrize("name,context", [("eeg2arm", 16), ("eeg2arm", 23), ("tcn", 9), ("tcn", 40)])
def test_bounded_context_equals_forward_seq_over_the_frames_it_saw(name, context):
    """context W: each output equals forward_seq over the last `context` input frames it reports,
    W/2..W of them (lanes); tcn with W >= its receptive field (15 frames here): exactly the last W."""
    model = random_model(name, 1)
    x = torch.randn(3, 1, 140)
    streamer = Streamer(model, context=context)
    parts = stepped(x, [1, 4, 3], streamer.push)
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    pool = streamer.pool
    assert len(out["frame"]) == 140 // pool
    field = getattr(model, "receptive_field", None)
    for q, last, seen, logits in zip(out["frame"], out["input_frame"], out["context"], out["logits"]):
        assert last == (q + 1) * pool - 1
        if field is not None and context >= field:
            seen = min(context, last + 1)                        # any window covering the field gives the same
        else:
            assert seen <= context and (seen > context // 2 or seen == last + 1), (q, seen)
        with torch.no_grad():
            ref = model.forward_seq(x[None, ..., last + 1 - seen:last + 1])[0, -1]
        assert (torch.as_tensor(logits) - ref).abs().max() < 1e-5, (q, seen)


def test_bounded_context_runs_in_constant_memory():
    model = random_model("eeg2arm", 1)
    streamer = Streamer(model, context=16)
    rng = np.random.default_rng(0)
    sizes = []
    for n in range(3000):
        streamer.push(rng.normal(size=(3, 1, 1)).astype(np.float32))
        if n in (500, 2999):
            sizes.append(streamer.current.cache.k[0].shape)
            assert sum(p.shape[-1] for p in streamer.kept) <= 16 // 2       # input kept for the waiting lane
    assert sizes[0] == sizes[1]
    unbounded = Streamer(model, context=None)
    for n in range(300):
        unbounded.push(rng.normal(size=(3, 1, 1)).astype(np.float32))
    assert unbounded.current.cache.k[0].shape[2] >= 150        # full history: every frame is kept


def test_an_empty_chunk_gives_no_frames_and_changes_nothing():
    for name, context in (("eeg2arm", 16), ("tcn", None), ("eeg2arm", None)):
        model = random_model(name, 1)
        x = torch.randn(3, 1, 40)
        streamer = Streamer(model, context=context)
        first = streamer.push(x[..., :5])
        empty = streamer.push(x[..., :0])
        assert empty["frame"].shape == (0,) and empty["probs"].shape == (0, 4)
        rest = streamer.push(x[..., 5:])
        assert list(np.concatenate([first["frame"], rest["frame"]])) == list(range(40 // streamer.pool))


def test_rows_of_a_segmentation_stream_and_an_empty_one(tmp_path):
    from biosig.deploy.decode import Rows
    from biosig.tasks.segmentation import Segmentation
    task = Segmentation(3, class_names=["rest", "left", "right"])
    frame = {"frame": 0, "input_frame": 1, "context": 2, "probs": np.array([0.2, 0.5, 0.3]), "time": 12345.678901}
    with Rows(str(tmp_path / "f.csv"), task) as rows:
        rows.add(0, frame, 1, True)
    (row,) = csv.DictReader(open(tmp_path / "f.csv"))
    assert row["pred"] == "1" and row["pred_name"] == "left" and row["prob_right"] == "0.3"
    assert row["time"] == "12345.678901" and row["decision"] == "1" and row["switch"] == "1"
    with Rows(str(tmp_path / "empty.csv"), task):
        pass
    assert open(tmp_path / "empty.csv").read().startswith("recording,frame,input_frame,context,pred,score,prob_rest")


def decisions(probs, k, p=0.0):
    smooth = Hysteresis(k, p)
    return [smooth.update(np.asarray(row, dtype=float)) for row in probs]


A, B, C = [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]


def test_hysteresis_k1_follows_every_frame():
    assert [d for d, _ in decisions([A, B, A, C], 1)] == [0, 1, 0, 2]
    assert [s for _, s in decisions([A, A, B], 1)] == [True, False, True]


def test_hysteresis_switches_after_k_agreeing_frames():
    # k = 2: one B is not enough, two in a row are; the count is not reset by agreeing frames
    assert [d for d, _ in decisions([A, A, B, A, B, B, B], 2)] == [None, 0, 0, 0, 0, 1, 1]
    # k = 5: four Bs then an A restart the count; five in a row switch on the fifth
    got = decisions([A] * 5 + [B] * 4 + [A] + [B] * 5, 5)
    assert [d for d, _ in got] == [None] * 4 + [0] * 10 + [1]
    assert [i for i, (_, s) in enumerate(got) if s] == [4, 14]


def test_hysteresis_flicker_never_switches_and_threshold_gates():
    assert {d for d, _ in decisions([A, A] + [B, C] * 10, 2)} == {None, 0}
    weak_b = [0.3, 0.4, 0.3]
    assert [d for d, _ in decisions([A, weak_b, weak_b, weak_b], 1, p=0.5)] == [0, 0, 0, 0]
    assert [d for d, _ in decisions([A, weak_b, weak_b], 1, p=0.4)] == [0, 1, 1]


def test_hysteresis_ties_keep_the_decision_else_go_to_the_lowest_class():
    tie_ab, tie_bc = [0.45, 0.45, 0.1], [0.1, 0.45, 0.45]
    assert [d for d, _ in decisions([B, tie_ab, tie_ab, tie_ab], 1)] == [1, 1, 1, 1]     # the decision holds
    assert [d for d, _ in decisions([A, A, tie_bc, tie_bc], 2)] == [None, 0, 0, 1]       # 1 wins the B/C tie


@pytest.fixture(scope="module")
def streamed(tmp_path_factory):
    """A trained eeg2arm (--standardize) and a recording of class blocks made of its kind of windows."""
    d = tmp_path_factory.mktemp("stream")
    X, y = make_windows(n=240, t=32)
    np.save(d / "X.npy", X)
    np.save(d / "y.npy", y)
    proc = run_here("train.py", "--x", d / "X.npy", "--y", d / "y.npy", "--model", "eeg2arm", *FAST, "--epochs", "12",
                    "--standardize", "--save", d / "ckpt.pt", "--run-dir", d / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    Xr, yr = make_windows(n=60, t=32, seed=7)
    order = np.argsort(yr, kind="stable")[::3]          # blocks of one class after another
    recording = np.concatenate(list(Xr[order]), -1)     # (3, 1, 20 * 32)
    frame_labels = np.repeat(yr[order], 32)
    np.save(d / "rec.npy", recording)
    return {"dir": d, "ckpt": d / "ckpt.pt", "rec": recording, "labels": frame_labels}


def test_infer_stream_writes_a_row_per_output_frame_as_the_model_decodes(streamed):
    d = streamed["dir"]
    proc = run_here("infer.py", "--ckpt", streamed["ckpt"], "--stream", "--x", d / "rec.npy", "--chunk", "3",
                    "--hysteresis", "3", "--threshold", "0.4", "--out", d / "frames.csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "decision ->" in proc.stdout and "latency per step of 3 input frames: p50" in proc.stdout
    rows = list(csv.DictReader(open(d / "frames.csv")))
    T = streamed["rec"].shape[-1]
    assert len(rows) == T // 2 and [int(r["frame"]) for r in rows] == list(range(T // 2))
    assert [int(r["input_frame"]) for r in rows] == list(range(1, T, 2))
    probs = np.array([[float(r[f"prob_{k}"]) for k in range(3)] for r in rows])
    # the same as the library's streamer, at the default context (the training window, 32 frames)
    from biosig.deploy.predictor import load_model_from_checkpoint
    predictor = load_model_from_checkpoint(str(streamed["ckpt"]))
    streamer = Streamer(predictor.model, context=32, preprocess=predictor.preprocess)
    assert np.abs(streamer.push(streamed["rec"])["probs"] - probs).max() < 1e-5
    # the hysteresis column is Hysteresis over those probabilities; switches are marked
    again = decisions(probs, 3, 0.4)
    assert [r["decision"] for r in rows] == ["" if d_ is None else str(d_) for d_, _ in again]
    assert [int(r["switch"]) for r in rows] == [int(s) for _, s in again]
    # real signal: the frames' classes follow the recording's blocks well above chance (1/3)
    labels = streamed["labels"][1::2][:len(rows)]
    assert (probs.argmax(1) == labels).mean() > 0.6


def test_infer_stream_jsonl_and_npy_and_full_context(streamed):
    d = streamed["dir"]
    proc = run_here("infer.py", "--ckpt", streamed["ckpt"], "--stream", "--x", d / "rec.npy", "--context", "all",
                    "--out", d / "frames.jsonl", "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in open(d / "frames.jsonl")]
    from biosig.deploy.predictor import load_model_from_checkpoint
    predictor = load_model_from_checkpoint(str(streamed["ckpt"]))
    full = predictor.predict_frames(streamed["rec"][None])["values"][0]      # forward_seq over everything
    assert np.abs(np.array([r["prob"] for r in rows]) - full).max() < 1e-5
    assert rows[-1]["context"] == streamed["rec"].shape[-1]
    proc = run_here("infer.py", "--ckpt", streamed["ckpt"], "--stream", "--x", d / "rec.npy", "--out", d / "f.npy", "--quiet")
    assert proc.returncode == 0 and np.load(d / "f.npy").shape == (1, streamed["rec"].shape[-1] // 2, 3)


def test_streaming_refusals_are_one_line_and_write_nothing(streamed, tmp_path):
    d = streamed["dir"]
    out = tmp_path / "frames.csv"
    X, y = make_windows(n=60, t=32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    # a checkpoint trained with the per-window z-score, which a stream does not have
    proc = run_here("train.py", "--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", "--model", "tcn", "--epochs", "1",
                    "--normalize", "--save", tmp_path / "z.pt", "--run-dir", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_user_error(run_here("infer.py", "--ckpt", tmp_path / "z.pt", "--stream", "--x", d / "rec.npy", "--out", out),
                      "z.pt", "cannot decode frame by frame", "--normalize", "--standardize")
    assert_user_error(run_here("infer.py", "--ckpt", streamed["ckpt"], "--x", d / "X.npy", "--hysteresis", "3"),
                      "--hysteresis", "--stream")
    assert_user_error(run_here("infer.py", "--ckpt", streamed["ckpt"], "--stream", "--x", d / "rec.npy", "--threshold", "1.5"),
                      "--threshold")
    assert_user_error(run_here("infer.py", "--ckpt", streamed["ckpt"], "--stream", "--out", out), "--stream", "--x")
    assert_user_error(run_here("infer.py", "--ckpt", streamed["ckpt"], "--stream", "--x", d / "rec.npy", "--no-softmax"),
                      "--no-softmax", "whole windows")
    np.save(tmp_path / "wrong.npy", np.zeros((5, 1, 100), np.float32))
    assert_user_error(run_here("infer.py", "--ckpt", streamed["ckpt"], "--stream", "--x", tmp_path / "wrong.npy", "--out", out),
                      "wrong.npy", "C=5", "C=3")
    assert not out.exists()


@pytest.mark.slow
def test_lsl_live_stream_decodes_like_the_recording_and_publishes_decisions(streamed, tmp_path):
    """A real LSL outlet in this process plays the recording; infer.py --lsl decodes it and
    --lsl-out publishes one sample per output frame, which an inlet here reads back."""
    pylsl = pytest.importorskip("pylsl")
    rec = streamed["rec"]
    name = f"biosig-test-{time.time_ns()}"
    source = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", 3, 250, "float32", name))
    proc = subprocess.Popen([sys.executable, f"{ROOT}/infer.py", "--ckpt", str(streamed["ckpt"]), "--lsl", name,
                             "--lsl-out", f"{name}-out", "--max-frames", str(rec.shape[-1]), "--chunk", "4",
                             "--hysteresis", "2", "--out", str(tmp_path / "live.csv"), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        found = pylsl.resolve_byprop("name", f"{name}-out", timeout=60)
        assert found, proc.stderr.read() if proc.poll() is not None else "no decision outlet"
        decisions_in = pylsl.StreamInlet(found[0], recover=False)
        decisions_in.open_stream(timeout=30)
        assert source.wait_for_consumers(60)
        received = []

        def read():
            while len(received) < rec.shape[-1] // 2:
                try:
                    samples, _ = decisions_in.pull_chunk(timeout=0.2)
                except RuntimeError:          # pylsl's LostError: infer.py closed its outlet
                    return
                received.extend(samples)
                if not samples and proc.poll() is not None:
                    return
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(0.5)
        for at in range(0, rec.shape[-1], 40):
            source.push_chunk(np.ascontiguousarray(rec[:, 0, at:at + 40].T))
            time.sleep(0.01)
        stdout, stderr = proc.communicate(timeout=120)
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    assert f"decoded {rec.shape[-1]} input frames -> {rec.shape[-1] // 2} output frames" in stdout
    rows = list(csv.DictReader(open(tmp_path / "live.csv")))
    offline = run_here("infer.py", "--ckpt", streamed["ckpt"], "--stream", "--x", streamed["dir"] / "rec.npy",
                       "--hysteresis", "2", "--out", tmp_path / "offline.csv", "--quiet")
    assert offline.returncode == 0
    expected = list(csv.DictReader(open(tmp_path / "offline.csv")))
    assert len(rows) == len(expected)
    for live, off in zip(rows, expected):
        assert abs(float(live["prob_0"]) - float(off["prob_0"])) < 1e-5 and live["decision"] == off["decision"]
    assert all(float(r["time"]) > 0 for r in rows)                  # LSL timestamps of the completing samples
    received = np.array(received)
    assert received.shape == (len(rows), 5)                          # decision, class, 3 probabilities
    assert [("" if v < 0 else str(int(v))) for v in received[:, 0]] == [r["decision"] for r in rows]
    assert np.abs(received[:, 2] - [float(r["prob_0"]) for r in rows]).max() < 1e-5


@pytest.mark.slow
def test_lsl_sigterm_keeps_what_was_decoded(streamed, tmp_path):
    """A supervisor's SIGTERM ends a live decode as Ctrl-C does: --out written, one line, exit 143."""
    pylsl = pytest.importorskip("pylsl")
    rec = streamed["rec"]
    name = f"biosig-term-{time.time_ns()}"
    source = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", 3, 250, "float32", name))
    out = tmp_path / "live.csv"
    proc = subprocess.Popen([sys.executable, f"{ROOT}/infer.py", "--ckpt", str(streamed["ckpt"]), "--lsl", name,
                             "--out", str(out), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    try:
        assert source.wait_for_consumers(60)
        time.sleep(0.5)
        source.push_chunk(np.ascontiguousarray(rec[:, 0, :200].T))
        time.sleep(2)
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr[-2000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("stopped by SIGTERM: the 100 output frames decoded are in"), stderr
    assert len(list(csv.DictReader(open(out)))) == 100


def test_infer_stream_of_n_windows_decodes_each_window_as_forward_seq(streamed, tmp_path, capsys):
    """(N, C, F, T): each window is its own recording, decoded as forward_seq decodes it (not the
    last window N times: a generator in a comprehension once bound the recording late)."""
    from biosig.cli.infer import main
    from biosig.deploy.predictor import load_model_from_checkpoint
    from conftest import run_main
    X, _ = make_windows(n=3, t=32, seed=5)
    np.save(tmp_path / "W.npy", X)
    code, _, err = run_main(main, ["--ckpt", streamed["ckpt"], "--stream", "--x", tmp_path / "W.npy",
                                   "--context", "all", "--out", tmp_path / "w.npy", "--quiet"], capsys)
    assert code == 0, err
    got = np.load(tmp_path / "w.npy")                                   # (N, T', K)
    full = load_model_from_checkpoint(str(streamed["ckpt"])).predict_frames(X)["values"]
    assert got.shape == full.shape and got.shape[0] == 3
    assert np.abs(got - full).max() < 1e-5
    assert np.abs(got[0] - got[2]).max() > 1e-3                         # the windows do differ
