"""What infer.py is given, checked once for both of its ways (whole windows: biosig/cli/infer.py;
frame by frame: decode.py): the --out file, and --x made what the checkpoint was trained on
(its signal contract: channels by name, raw samples into band-power frames).
"""
import os

from ..errors import UserError
from ..signals.contract import check_shape, conform, given, read, sidecar

OUT_SUFFIXES = (".csv", ".npy", ".jsonl")


def check_out(out, inputs):
    """--out (None: not given) must end in .csv, .npy or .jsonl and be writable without
    overwriting one of the `inputs` [(flag, path)]."""
    if not out:
        return
    if os.path.splitext(out)[1] not in OUT_SUFFIXES:
        raise UserError(f"{out}: --out must end in .csv, .npy or .jsonl")
    from .. import checkpoint
    checkpoint.check_writable(out, "--out", inputs=inputs)


def conform_input(X, path, fs, channel_names, predictor, ckpt_path):
    """infer.py's --x (N, C, F, T) (with --fs, --channel-names) against the checkpoint's contract:
    conform()ed. A parquet input's columns were already read by the checkpoint's channel names; the
    rest of its description (sampling rate, units, band power) comes from the sidecar beside it, as
    train.py reads it (biosig.convert writes one), checked against --fs."""
    from ..data import parquet
    if parquet.is_parquet(path):
        spec = given(None, fs, channel_names, predictor.channels)
        for key, value in read(path).items():
            if key == "channels":
                continue
            if key == "fs" and fs is not None and value != fs:
                raise UserError(f"{path}: --fs {fs:g} contradicts {sidecar(path)} ({value:g})")
            spec.setdefault(key, value)
    else:
        spec = given(path, fs, channel_names)
    check_shape(spec, X.shape, path)
    source = "--fs" if fs else os.path.basename(sidecar(path)) if spec.get("fs") else None
    return conform(X, spec, predictor.signal, path, ckpt_path, source=source)
