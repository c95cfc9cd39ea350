"""Band-power frames of a windows file: what biosig.bandpower writes (biosig/cli/bandpower.py).
The computation itself is biosig/signals/bandpower.py (BandPower), which the signal contract
also uses; this file adds reading the raw windows, their description and the atomic write.
"""
import os

import numpy as np

from . import contract
from ..atomic import atomic_path
from ..errors import UserError
from .bandpower import BandPower, parse_bands
from .recordings import mapped


def write_frames(x, fs, out, bands=None, frame=None, hop=0.25, method="stft", log=False, batch=256):
    """What biosig.bandpower does (biosig/cli/bandpower.py): raw windows x (.npy (N, C, 1, T) or
    (N, C, T)) sampled at fs -> band-power frames (N, C, F, T') written atomically to `out` with
    out.signal.json beside it. bands: the --bands text or None. -> the summary line."""
    from ..checkpoint import check_writable      # loads torch: after a bad OMP_NUM_THREADS is our one line
    if os.path.splitext(out)[1] != ".npy":
        raise UserError(f"{out}: --out must end in .npy")
    check_writable(out, "--out", inputs=[("--x", x)])
    bp = BandPower(fs, parse_bands(bands) if bands is not None else None, frame, hop, method, log)
    path, X = x, mapped(x, "raw windows")
    if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
        raise UserError(f"{path}: raw windows must be numbers, got dtype {X.dtype}")
    if X.ndim == 3:
        X = X[:, :, None]
    if X.ndim != 4 or X.shape[2] != 1:
        raise UserError(f"{path}: raw windows are (N, C, 1, T) or (N, C, T), got shape {tuple(X.shape)}")
    t_out = bp.n_frames(X.shape[-1])
    if t_out == 0:
        raise UserError(f"{path}: windows of {X.shape[-1]} samples are shorter than one frame ({bp.frame} samples "
                        f"= --frame {bp.frame / bp.fs:g} s at {fs:g} Hz"
                        + (f", the --method {method} default" if frame is None else "") + ")")
    spec = contract.read(path)          # the raw windows' description, if they have one
    if spec.get("bandpower"):
        raise UserError(f"{path}: holds band-power frames already ({contract.sidecar(path)})")
    if spec.get("fs") and abs(spec["fs"] - fs) > 1e-6:
        raise UserError(f"{path}: sampled at {spec['fs']:g} Hz ({contract.sidecar(path)}), not --fs {fs:g}")
    contract.check_shape(spec, X.shape, path)
    with atomic_path(out) as tmp:
        frames = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                           shape=(len(X), X.shape[1], len(bp.bands), t_out))
        for start in range(0, len(X), batch):
            frames[start:start + batch] = bp(X[start:start + batch])
        frames.flush()
        del frames
    contract.write(out, {**spec, "fs": fs, "bandpower": bp.config})
    return (f"{out}: {len(X)} windows (N, C, F, T') = ({len(X)}, {X.shape[1]}, {len(bp.bands)}, {t_out}); bands "
            + ", ".join(f"{k} {lo:g}-{hi:g} Hz" for k, (lo, hi) in bp.bands.items())
            + f"; frames of {bp.frame} samples every {bp.hop}" + ("; log10" if bp.log else ""))
