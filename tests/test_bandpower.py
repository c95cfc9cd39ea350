"""Band-power frames: a pure sine's power lands in its band, in the right amount; a stream gives
the windows' numbers frame by frame; the CLI writes (N, C, F, T') and refuses bad input in one line."""
import numpy as np
import pytest

from conftest import assert_user_error, run_here


def bandpower(*args):
    """python -m biosig.bandpower ARGS, in-process (tests/test_bad_input.py runs it as a process once)."""
    return run_here("biosig.bandpower", *args)


@pytest.mark.parametrize("method,frame", [("stft", 0.5), ("welch", 1.0)])
def test_a_10_hz_sine_is_alpha_power_of_half_its_squared_amplitude(method, frame):
    from biosig.signals.bandpower import BandPower
    fs, amplitude = 128, 3.0
    t = np.arange(4 * fs) / fs
    x = (amplitude * np.sin(2 * np.pi * 10 * t))[None, None, None]                # (1, 1, 1, T)
    bp = BandPower(fs, frame=frame, hop=0.25, method=method)
    power = bp(x)
    assert power.shape == (1, 1, 5, bp.n_frames(len(t)))
    per_band = power[0, 0].mean(-1)                                               # delta theta alpha beta gamma
    assert per_band.argmax() == 2
    assert per_band[2] == pytest.approx(amplitude ** 2 / 2, rel=0.02)             # Parseval: mean square of a sine
    assert per_band[[0, 1, 3, 4]].max() < 0.01 * per_band[2]


def test_log_power_of_a_signal_in_volts_is_not_floored():
    from biosig.signals.bandpower import BandPower
    fs = 128
    t = np.arange(4 * fs) / fs
    x = (1e-6 * np.sin(2 * np.pi * 10 * t))[None, None, None]                    # 1 uV of alpha, in volts
    alpha = BandPower(fs, log=True)(x)[0, 0, 2]
    np.testing.assert_allclose(alpha, np.log10(1e-12 / 2), atol=0.01)             # log10(A^2 / 2) = -12.3


def test_a_stream_gives_the_windows_frames_one_chunk_at_a_time():
    from biosig.signals.bandpower import BandPower
    bp = BandPower(256, frame=0.5, hop=0.125, log=True)
    recording = np.random.default_rng(0).normal(size=(4, 3000))
    whole = bp(recording)                                                          # (C, F, T')
    stream, outs, i = bp.stream(), [], 0
    for n in (1, 31, 64, 0, 500, 7, 1200, 1197):
        outs.append(stream.push(recording[:, i:i + n]))
        i += n
    assert i == 3000
    np.testing.assert_allclose(np.concatenate(outs, -1), whole, atol=1e-6)


def test_the_command_writes_frames_and_refuses_bad_input(tmp_path):
    from biosig.signals.bandpower import BandPower
    raw = np.random.default_rng(1).normal(size=(6, 2, 1, 256)).astype(np.float32)
    np.save(tmp_path / "raw.npy", raw)
    proc = bandpower("--x", tmp_path / "raw.npy", "--fs", "128", "--out", tmp_path / "bands.npy")
    assert proc.returncode == 0, proc.stderr[-2000:]
    bands = np.load(tmp_path / "bands.npy")
    assert bands.shape == (6, 2, 5, 7)                                             # 1 + (256 - 64) // 32 frames
    np.testing.assert_allclose(bands, BandPower(128)(raw), rtol=1e-6)

    for args, needle in ((["--fs", "64"], "Nyquist"),                              # gamma 30-45 Hz above 32 Hz
                         (["--fs", "128", "--frame", "4"], "shorter than one frame"),
                         (["--fs", "128", "--bands", "alpha:13-8"], "not a range"),
                         (["--fs", "0"], "--fs")):
        proc = bandpower("--x", tmp_path / "raw.npy", *args, "--out", tmp_path / "bad.npy")
        assert_user_error(proc, needle)
        assert not (tmp_path / "bad.npy").exists()


def band_power_checkpoint(path, fs=128, frames=1):
    """An untrained tcn checkpoint on log band-power frames of Fz, Cz, Pz at fs (no training: only
    the signal contract is under test)."""
    from biosig import checkpoint, normalize
    from biosig.signals.bandpower import BandPower
    from biosig.models import build_model
    from biosig.tasks import TASKS
    model = build_model({"name": "tcn", "n_elec": 3, "n_bands": 5, "n_outputs": 2, "drop": 0.0, "channels": 8,
                         "levels": 2, "kernel": 3})
    signal = {"fs": float(fs), "channels": ["Fz", "Cz", "Pz"], "units": None,
              "bandpower": BandPower(fs, log=True).config}
    checkpoint.atomic_save(checkpoint.model_payload(model, TASKS["classification"](2), (1, 3, 5, frames),
                                                    normalize.make_spec(), 1, {}, signal=signal), path)


def test_infer_py_makes_band_power_of_raw_windows_only_at_a_rate_it_was_given(tmp_path, capsys):
    """Raw windows with no X.signal.json for a band-power checkpoint: no rate is assumed (the
    checkpoint's 128 Hz was); with --fs one line says what was computed from what."""
    from biosig.signals.bandpower import BandPower
    from biosig.cli.infer import main as infer
    from biosig.deploy.predictor import load_model_from_checkpoint
    from conftest import main_fails, run_main
    band_power_checkpoint(tmp_path / "bp.pt")
    X = np.random.default_rng(0).normal(size=(480, 3, 1, 64)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    argv = ["--ckpt", tmp_path / "bp.pt", "--x", tmp_path / "X.npy", "--quiet", "--out", tmp_path / "p.npy"]
    main_fails(infer, argv, capsys, "X.npy", "sampling rate", "--fs", "X.signal.json")
    assert not (tmp_path / "p.npy").exists()
    code, out, err = run_main(infer, argv + ["--fs", 128], capsys)
    assert code == 0, err
    assert f"{tmp_path / 'X.npy'}: raw samples (T=64 at 128 Hz, --fs) made into {tmp_path / 'bp.pt'}'s band-power " \
           f"frames (F=5, T=1): delta 1-4 Hz" in out and "log10" in out, out
    expected = load_model_from_checkpoint(str(tmp_path / "bp.pt")).predict(BandPower(128, log=True)(X))["values"]
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, atol=1e-6)
    main_fails(infer, argv + ["--fs", 256], capsys, "sampled at 256 Hz", "128 Hz")


@pytest.mark.parametrize("kwargs", [dict(log=True), dict(), dict(method="welch", hop=0.1, log=True),
                                    dict(frame=0.5, hop=0.125, log=True)])
def test_the_exported_graphs_band_power_is_biosig_bandpowers(kwargs):
    """biosig.export's torch BandPowerFrames (float32, in the .onnx) against BandPower (float64):
    volts with a DC offset 200x the signal, as raw EEG comes from an amplifier."""
    import torch
    from biosig.signals.bandpower import BandPower
    from biosig.deploy.export import BandPowerFrames
    bp = BandPower(250, **kwargs)
    x = (np.random.default_rng(0).normal(size=(3, 4, 1, 600)) * 1e-5 + 2e-3).astype(np.float32)
    want, got = bp(x), BandPowerFrames(bp)(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape == (3, 4, 5, bp.n_frames(600))
    if bp.log:
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)                # log10 units
    else:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=0)
