"""Band-power frames: raw windows (N, C, 1, T) sampled at fs -> (N, C, F, T'), the power of each
of F frequency bands in each of T' frames (the EEG2Arm guide's input: its F axis is
delta/theta/alpha/beta/gamma per frame).

    python -m biosig.bandpower --x raw.npy --fs 128 --out bands.npy [--frame 0.5 --hop 0.25 --log]

bands.signal.json beside the output records how the frames were made (and raw.signal.json's
channels): train.py stores it in the checkpoint, and infer.py then takes raw windows too.

Frame j covers samples [j*hop, j*hop + frame) of the window; T' = 1 + (T - frame) // hop. Each
frame's spectrum is a periodogram with a Hann taper (stft), or the mean of periodograms of
half-frame segments overlapping by half (welch: smoother, coarser in frequency). A band's power
is the one-sided power spectral density integrated over [low, high) Hz (units^2; log10 of it with
--log). The same computation runs on a stream (BandPower.stream(): frames out as samples come in),
frame for frame equal to the windows'.
"""

import numpy as np

from ..errors import UserError

# name: (low, high) Hz, in the order of the F axis
BANDS = {"delta": (1.0, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0), "gamma": (30.0, 45.0)}
LOG_FLOOR = 1e-30       # --log: a floor far below any real signal's power (EEG in V^2 is ~1e-12)


class BandPower:
    """fs: sampling rate (Hz); bands: {name: (low, high)} in F-axis order; frame, hop: seconds;
    method: "stft" or "welch"; log: log10 of the power."""

    @classmethod
    def from_config(cls, config):
        """A checkpoint's bandpower entry (BandPower.config) -> the BandPower that made its frames."""
        fs = config["fs"]
        return cls(fs, {k: tuple(v) for k, v in config["bands"].items()}, config["frame"] / fs, config["hop"] / fs,
                   config["method"], config["log"])

    def __init__(self, fs, bands=None, frame=None, hop=0.25, method="stft", log=False):
        frame = frame or (0.5 if method == "stft" else 1.0)     # welch's half-frame segments need 1 s for delta
        self.fs, self.bands = float(fs), dict(bands or BANDS)
        self.frame, self.hop = int(round(frame * fs)), int(round(hop * fs))
        self.method, self.log = method, log
        if self.frame < 2 or self.hop < 1:
            raise UserError(f"--frame {frame} s and --hop {hop} s at --fs {fs} Hz are {self.frame} and {self.hop} "
                            f"samples: a frame needs 2 or more, a hop 1 or more")
        seg = self.frame if method == "stft" else max(2, self.frame // 2)
        self.seg, self.step = seg, max(1, seg // 2)
        freqs = np.fft.rfftfreq(seg, 1.0 / self.fs)
        nyquist = self.fs / 2
        for name, (low, high) in self.bands.items():
            if not 0 <= low < high:
                raise UserError(f"band {name}: {low}-{high} Hz is not a range (low < high, low >= 0)")
            if high > nyquist:
                raise UserError(f"band {name}: {low}-{high} Hz reaches above the Nyquist frequency of --fs {fs} "
                                f"({nyquist:g} Hz)")
            if not ((freqs >= low) & (freqs < high)).any():
                raise UserError(f"band {name}: {low}-{high} Hz holds no frequency bin of a {seg}-sample segment "
                                f"({self.fs / seg:g} Hz apart); use a longer --frame")
        taper = np.hanning(seg + 2)[1:-1]       # a Hann window with no zero end points
        # one-sided PSD of a tapered segment: |rfft|^2 / (fs * sum(taper^2)), doubled but at 0 and Nyquist
        scale = np.full(len(freqs), 2.0 / (self.fs * (taper ** 2).sum()))
        scale[0] /= 2
        if seg % 2 == 0:
            scale[-1] /= 2
        df = self.fs / seg
        # (F, bins): a band's power is its PSD bins summed times the bin width
        self.weights = np.stack([((freqs >= lo) & (freqs < hi)) * scale * df for lo, hi in self.bands.values()])
        self.taper = taper

    def n_frames(self, t):
        """Frames of a window of t samples (0 when it is shorter than one frame)."""
        return 0 if t < self.frame else 1 + (t - self.frame) // self.hop

    def __call__(self, x):
        """x (..., T) raw samples -> (..., F, T') band power, float32. A window (N, C, 1, T) gives
        (N, C, F, T'). Computed a block of frames at a time (x may be a long memory-mapped
        recording: only a block is ever in memory as float64)."""
        if x.ndim == 4 and x.shape[2] == 1:
            x = x[:, :, 0]
        n = self.n_frames(x.shape[-1])
        lead = x.shape[:-1]
        out = np.empty(lead + (len(self.bands), n), np.float32)
        per_block = max(1, (1 << 22) // (max(1, int(np.prod(lead))) * self.frame))
        for j0 in range(0, n, per_block):
            j1 = min(n, j0 + per_block)
            block = np.asarray(x[..., j0 * self.hop:(j1 - 1) * self.hop + self.frame], dtype=np.float64)
            out[..., j0:j1] = self._frames(block, j1 - j0)
        return out

    def _frames(self, x, n):
        """x (..., samples of n frames) float64 -> (..., F, n) band power."""
        frames = x[..., (np.arange(n) * self.hop)[:, None] + np.arange(self.frame)]   # (..., n, frame)
        segs = 1 + (self.frame - self.seg) // self.step
        power = 0.0
        for k in range(segs):                                              # welch: average the segments
            seg = frames[..., k * self.step:k * self.step + self.seg]
            seg = (seg - seg.mean(-1, keepdims=True)) * self.taper
            power = power + np.abs(np.fft.rfft(seg, axis=-1)) ** 2
        bands = (power / segs) @ self.weights.T                            # (..., n, F)
        if self.log:
            bands = np.log10(np.maximum(bands, LOG_FLOOR))
        return np.moveaxis(bands, -1, -2)

    def stream(self):
        """A stateful frame maker for a live stream: push(chunk (C, n) samples) -> (C, F, k) band
        power of the k frames completed by this chunk, the same numbers as __call__ gives for the
        whole recording."""
        return _Stream(self)

    def describe(self):
        """One line of how the frames are made, e.g. 'delta 1-4 Hz, ..., gamma 30-45 Hz band power
        (stft) in frames of 64 samples (0.5 s) every 32 (0.25 s) at 128 Hz, log10'."""
        return (", ".join(f"{k} {lo:g}-{hi:g} Hz" for k, (lo, hi) in self.bands.items())
                + f" band power ({self.method}) in frames of {self.frame} samples ({self.frame / self.fs:g} s) every "
                f"{self.hop} ({self.hop / self.fs:g} s) at {self.fs:g} Hz" + (", log10" if self.log else ""))

    @property
    def config(self):
        """What a checkpoint records of it (and what the CLI prints)."""
        return {"fs": self.fs, "bands": {k: list(v) for k, v in self.bands.items()}, "frame": self.frame,
                "hop": self.hop, "method": self.method, "log": self.log}


class _Stream:
    def __init__(self, bp):
        self.bp, self.buffer = bp, None

    def push(self, chunk):
        chunk = np.asarray(chunk, dtype=np.float64)
        self.buffer = chunk if self.buffer is None else np.concatenate([self.buffer, chunk], axis=-1)
        k = self.bp.n_frames(self.buffer.shape[-1])
        out = self.bp(self.buffer[..., :self.bp.frame + (k - 1) * self.bp.hop]) if k else None
        self.buffer = self.buffer[..., k * self.bp.hop:]
        if out is None:
            return np.zeros(chunk.shape[:-1] + (len(self.bp.bands), 0), np.float32)
        return out


def parse_bands(text):
    """--bands 'delta:1-4,theta:4-8,...' -> {name: (low, high)}."""
    bands = {}
    for part in text.split(","):
        try:
            name, span = part.split(":")
            low, high = (float(v) for v in span.split("-"))
        except ValueError:
            raise UserError(f"--bands {text!r}: expected name:low-high,... e.g. alpha:8-13,beta:13-30") from None
        if not name.strip():
            raise UserError(f"--bands {text!r}: a band needs a name (name:low-high)")
        if name.strip() in bands:
            raise UserError(f"--bands {text!r}: {name.strip()} is given twice")
        bands[name.strip()] = (low, high)
    if not bands:
        raise UserError("--bands: give at least one band, name:low-high")
    return bands
