"""Streaming several inputs at their own rates (fusion-late with per-frame encoders): the fused
stepper equals the whole-window model's forward_seq for any chunking of any input, infer.py
--stream decodes two recordings as forward_seq does, refuses what it cannot stream in one line,
and --lsl aligns two live streams by their LSL times."""
import random
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from biosig.deploy.lsl import Aligner
from biosig.deploy.streamer_several import SeveralStreamer
from biosig.models import build_model
from biosig.models.fusion import LateFusion
from conftest import ENV, ROOT, assert_user_error, run_here


def fusion(encoder, modality_drop=0.0):
    """A random eval-mode fusion-late of ppg (1 channel, 64 frames a window) and acc (3 channels, 32)."""
    torch.manual_seed(0)
    config = LateFusion.resolve_options(dict(
        name="fusion-late", n_outputs=3, drop=0.1, modality_drop=modality_drop, encoder=encoder,
        modalities={"ppg": dict(n_elec=1, n_bands=1, n_times=64), "acc": dict(n_elec=3, n_bands=1, n_times=32)}))
    for enc in config["encoders"].values():
        if enc["name"] == "tcn":
            enc.update(channels=8, levels=3, kernel=3)
        else:
            enc.update(frame_embed=16, n_heads=2, spatial_filters=8, depth_mult=2)
    model = build_model(config).eval()
    with torch.no_grad():
        for name in model.absent:
            model.absent[name].normal_()
    return model


def randomly_stepped(step, x, seed):
    """Push x {name: (..., T_m)} in random pieces (0..9 frames) of randomly chosen inputs."""
    rng, at, outs = random.Random(seed), dict.fromkeys(x, 0), []
    while any(at[n] < v.shape[-1] for n, v in x.items()):
        name = rng.choice([n for n in x if at[n] < x[n].shape[-1]])
        k = rng.randint(0, 9)
        outs.append(step({name: x[name][..., at[name]:at[name] + k]}))
        at[name] += k
    return outs


@pytest.mark.parametrize("encoder", ["tcn", "ppg=tcn,acc=eeg2arm"])
@pytest.mark.parametrize("seed", [0, 1])
def test_fused_stepper_equals_forward_seq_for_any_chunking(encoder, seed):
    """Two inputs at 2:1, each pushed in its own random pieces (acc through eeg2arm: a time pool of
    2, so 1 output frame per 4 ppg frames): the same frames as forward_seq, within 1e-5."""
    model = fusion(encoder)
    x = {"ppg": torch.randn(2, 1, 1, 208), "acc": torch.randn(2, 3, 1, 104)}
    with torch.no_grad():
        full = model.forward_seq(x)
    out = torch.cat(randomly_stepped(model.stepper().step, x, seed), 1)
    assert out.shape == full.shape
    assert (out - full).abs().max() < 1e-5


def test_an_absent_input_streams_as_forward_seq_leaves_it_out():
    model = fusion("tcn", modality_drop=0.3)
    x = {"acc": torch.randn(1, 3, 1, 50)}
    with torch.no_grad():
        full = model.forward_seq(x)
    out = torch.cat(randomly_stepped(model.stepper(inputs=["acc"]).step, x, 3), 1)
    assert (out - full).abs().max() < 1e-5
    with_ppg = model.forward_seq({**x, "ppg": torch.randn(1, 1, 1, 100)})
    assert (out - with_ppg).abs().max() > 1e-3          # the stand-in is not what ppg gives


def test_several_streamer_preprocesses_each_input_and_reports_the_clock_inputs_times():
    model = fusion("tcn")
    spec = {"inputs": {"ppg": {"mean": [[2.0]], "std": [[3.0]]}, "acc": {"mean": [[1.0], [0.0], [-1.0]],
                                                                        "std": [[1.0], [2.0], [0.5]]}}}
    x = {"ppg": np.random.default_rng(0).normal(2, 3, (1, 1, 120)).astype(np.float32),
         "acc": np.random.default_rng(1).normal(0, 1, (3, 1, 60)).astype(np.float32)}
    streamer = SeveralStreamer(model, spec)
    times = {"ppg": np.arange(120) / 64, "acc": 100 + np.arange(60) / 32}      # acc: the clock (fewer frames)
    parts = [streamer.push({"ppg": x["ppg"][..., i:i + 10]}, {"ppg": times["ppg"][i:i + 10]}) for i in range(0, 120, 10)]
    parts += [streamer.push({"acc": x["acc"][..., i:i + 7]}, {"acc": times["acc"][i:i + 7]}) for i in range(0, 60, 7)]
    out = {k: np.concatenate([p[k] for p in parts if k in p]) for k in parts[-1]}
    norm = {n: (torch.from_numpy(v)[None] - torch.tensor(spec["inputs"][n]["mean"])[None, :, :, None])
            / (torch.tensor(spec["inputs"][n]["std"])[None, :, :, None] + 1e-6) for n, v in x.items()}
    with torch.no_grad():
        full = torch.softmax(model.forward_seq(norm)[0], -1).numpy()
    assert np.abs(out["probs"] - full).max() < 1e-5
    assert list(out["frame"]) == list(range(60)) and list(out["input_frame"]) == list(range(60))
    assert np.allclose(out["time"], times["acc"])


def test_aligner_starts_every_stream_at_the_latest_first_sample():
    """A fake pair of streams: acc starts 0.5 s before ppg; its first 16 samples (32 Hz) are dropped,
    and nothing comes out until both have started."""
    aligner = Aligner({"ppg": 64.0, "acc": 32.0})
    acc_t, ppg_t = 10.0 + np.arange(48) / 32, 10.5 + np.arange(64) / 64 + 0.002     # ppg 2 ms late: < half a sample
    assert aligner.push("acc", np.arange(48.0)[None, :24], acc_t[:24]) == {}
    ready = aligner.push("ppg", np.arange(64.0)[None, :10], ppg_t[:10])
    assert list(ready["acc"][0][0]) == list(range(16, 24)) and list(ready["ppg"][0][0]) == list(range(10))
    assert aligner.push("acc", np.arange(48.0)[None, 24:], acc_t[24:])["acc"][0].shape == (1, 24)
    # a stream's samples from before the start that arrive after it is known are dropped too
    aligner = Aligner({"ppg": 64.0, "acc": 32.0})
    aligner.push("acc", np.arange(48.0)[None, :8], acc_t[:8])
    assert list(aligner.push("ppg", np.arange(64.0)[None, :10], ppg_t[:10])["acc"][0][0]) == []
    assert list(aligner.push("acc", np.arange(48.0)[None, 8:20], acc_t[8:20])["acc"][0][0]) == [16, 17, 18, 19]


@pytest.fixture(scope="module")
def fused(tmp_path_factory):
    """A fusion-late of tcn encoders trained (--standardize) on the wearable example's activity, and
    two recordings (ppg 64 Hz, acc 32 Hz) of test windows one after another."""
    d = tmp_path_factory.mktemp("fused")
    assert run_here("biosig.examples", "wearable", d / "w").returncode == 0
    w = d / "w"
    for name in ("ppg", "acc", "act"):
        np.save(d / f"{name}.npy", np.load(w / f"{name}.npy")[:90])
    for name in ("ppg", "acc"):
        for stem in (name, f"rec_{name}", f"short_{name}"):
            (d / f"{stem}.signal.json").write_text((w / f"{name}.signal.json").read_text())
        rec = np.concatenate(list(np.load(w / f"{name}_test.npy")[:6]), -1)           # (C, 1, 6 windows)
        np.save(d / f"rec_{name}.npy", rec)
        np.save(d / f"short_{name}.npy", rec[..., :-3])
    proc = run_here("train.py", "--x", f"ppg={d / 'ppg.npy'}", "--x", f"acc={d / 'acc.npy'}", "--y", d / "act.npy",
                    "--task", "classification", "--model", "fusion-late", "--encoder", "tcn", "--standardize",
                    "--epochs", "1", "--save", d / "f.pt", "--run-dir", d / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return d


def test_infer_streams_two_recordings_as_forward_seq(fused):
    d = fused
    proc = run_here("infer.py", "--ckpt", d / "f.pt", "--stream", "--x", f"ppg={d / 'rec_ppg.npy'}",
                    "--x", f"acc={d / 'rec_acc.npy'}", "--chunk", "5", "--out", d / "frames.npy", "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "-> 1536 output frames" in proc.stdout                      # 6 windows of 256 acc frames
    from biosig.deploy.predictor import load_model_from_checkpoint
    predictor = load_model_from_checkpoint(str(d / "f.pt"))
    x = {n: np.load(d / f"rec_{n}.npy")[None] for n in ("ppg", "acc")}
    with torch.no_grad():
        full = torch.softmax(predictor.model.forward_seq(predictor._windows(x)), -1).numpy()
    streamed = np.load(d / "frames.npy")
    assert streamed.shape == full.shape == (1, 1536, 3)
    assert np.abs(streamed - full).max() < 1e-5


def test_streaming_several_inputs_refusals_are_one_line_and_write_nothing(fused, tmp_path):
    d, out = fused, tmp_path / "frames.csv"
    ppg, acc = f"ppg={d / 'rec_ppg.npy'}", f"acc={d / 'rec_acc.npy'}"
    assert_user_error(run_here("infer.py", "--ckpt", d / "f.pt", "--stream", "--x", ppg, "--x", f"acc={d / 'short_acc.npy'}",
                               "--out", out), "different durations", "short_acc.npy")
    assert_user_error(run_here("infer.py", "--ckpt", d / "f.pt", "--stream", "--x", d / "rec_ppg.npy", "--out", out),
                      "--x NAME=", "ppg, acc")
    assert_user_error(run_here("infer.py", "--ckpt", d / "f.pt", "--stream", "--x", ppg, "--out", out),
                      "acc is missing", "--modality-drop")
    assert_user_error(run_here("infer.py", "--ckpt", d / "f.pt", "--stream", "--x", ppg, "--x", acc, "--context", "64",
                               "--out", out), "--context 64", "without lanes")
    # a fusion of MiniRocket encoders has no per-frame output
    proc = run_here("train.py", "--x", f"ppg={d / 'ppg.npy'}", "--x", f"acc={d / 'acc.npy'}", "--y", d / "act.npy",
                    "--task", "classification", "--model", "fusion-late", "--save", tmp_path / "mr.pt",
                    "--run-dir", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_user_error(run_here("infer.py", "--ckpt", tmp_path / "mr.pt", "--stream", "--x", ppg, "--x", acc,
                               "--out", out), "mr.pt", "no per-frame output", "--encoder tcn")
    assert not out.exists()


def test_lsl_two_streams_aligned_by_their_times_decode_like_the_recordings(fused, tmp_path):
    """Two real LSL outlets play the recordings; acc starts a second (32 samples) before ppg, which
    the alignment drops, so the live decoding equals the recordings' frame for frame."""
    pylsl = pytest.importorskip("pylsl")
    d = fused
    ppg, acc = np.load(d / "rec_ppg.npy")[:, 0], np.load(d / "rec_acc.npy")[:, 0]          # (C, T)
    acc = np.concatenate([np.random.default_rng(0).normal(size=(3, 32)).astype(np.float32), acc], -1)
    tag = time.time_ns()
    outlets = {n: pylsl.StreamOutlet(pylsl.StreamInfo(f"{n}-{tag}", "Misc", c, fs, "float32", f"{n}-{tag}"))
               for n, c, fs in (("ppg", 1, 64), ("acc", 3, 32))}
    proc = subprocess.Popen([sys.executable, f"{ROOT}/infer.py", "--ckpt", str(d / "f.pt"), "--lsl", f"ppg=ppg-{tag}",
                             "--lsl", f"acc=acc-{tag}", "--max-frames", "1536", "--chunk", "16",
                             "--out", str(tmp_path / "live.npy"), "--quiet", "--lsl-timeout", "20"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        for outlet in outlets.values():
            assert outlet.wait_for_consumers(60), proc.stderr.read() if proc.poll() is not None else "no inlet"
        t0 = pylsl.local_clock() + 1.0
        stamps = {"ppg": t0 + np.arange(ppg.shape[-1]) / 64, "acc": t0 - 1 + np.arange(acc.shape[-1]) / 32}
        outlets["acc"].push_chunk(np.ascontiguousarray(acc[:, :32].T), list(stamps["acc"][:32]))
        for k in range(ppg.shape[-1] // 64):           # then both, a second at a time
            a = 32 + 32 * k
            outlets["acc"].push_chunk(np.ascontiguousarray(acc[:, a:a + 32].T), list(stamps["acc"][a:a + 32]))
            outlets["ppg"].push_chunk(np.ascontiguousarray(ppg[:, 64 * k:64 * k + 64].T),
                                      list(stamps["ppg"][64 * k:64 * k + 64]))
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    offline = run_here("infer.py", "--ckpt", d / "f.pt", "--stream", "--x", f"ppg={d / 'rec_ppg.npy'}",
                       "--x", f"acc={d / 'rec_acc.npy'}", "--out", tmp_path / "offline.npy", "--quiet")
    assert offline.returncode == 0, offline.stderr[-2000:]
    live, expected = np.load(tmp_path / "live.npy"), np.load(tmp_path / "offline.npy")
    assert live.shape == expected.shape == (1, 1536, 3)
    assert np.abs(live - expected).max() < 1e-5
