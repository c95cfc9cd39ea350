"""Regenerate data/basicmotions/*.npy from the BasicMotions .ts files that the aeon wheel bundles.

    python data/make_basicmotions.py                 # downloads the aeon wheel with pip (no install)
    python data/make_basicmotions.py --wheel aeon-1.6.0-py3-none-any.whl

Writes X_train.npy / X_test.npy (40, 6, 1, 100) float32 — 6 channels (accelerometer x,y,z,
gyroscope x,y,z), F=1 (raw time), T=100 frames (10 Hz x 10 s) — y_train.npy / y_test.npy (40,)
int64 indices into classes.json, the class names in the order the archive declares them.
"""
import argparse
import glob
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "basicmotions")
MEMBER = "aeon/datasets/data/BasicMotions/BasicMotions_{}.ts"


def parse_ts(text):
    """Parse a UEA .ts file (equal length, no missing values).
    Returns (X (N, D, L) float32, labels list[str], class_names list[str])."""
    classes, rows, labels, in_data = None, [], [], False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if line.lower().startswith("@classlabel"):
                classes = line.split()[2:]
            elif line.lower() == "@data":
                in_data = True
            continue
        *dims, label = line.split(":")
        rows.append([[float(v) for v in d.split(",")] for d in dims])
        labels.append(label)
    return np.asarray(rows, dtype=np.float32), labels, classes


def main():
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wheel", help="aeon wheel to read from (default: pip download aeon==1.6.0)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, "aeon==1.6.0"],
                           check=True)
            wheel = glob.glob(os.path.join(tmp, "aeon-*.whl"))[0]
        with zipfile.ZipFile(wheel) as z:
            texts = {split: z.read(MEMBER.format(split.upper())).decode() for split in ("train", "test")}
    os.makedirs(HERE, exist_ok=True)
    names = None
    for split, text in texts.items():
        X, labels, classes = parse_ts(text)
        names = names or classes
        y = np.array([names.index(lab) for lab in labels], dtype=np.int64)
        X = X[:, :, None, :]  # (N, C, T) -> (N, C, F=1, T)
        for name, arr in (("X", X), ("y", y)):
            buf = io.BytesIO()
            np.save(buf, arr)
            with open(os.path.join(HERE, f"{name}_{split}.npy"), "wb") as f:
                f.write(buf.getvalue())
        print(f"{split}: X {X.shape} {X.dtype}, y counts {np.bincount(y, minlength=len(names)).tolist()}")
    with open(os.path.join(HERE, "classes.json"), "w") as f:
        json.dump(names, f)
        f.write("\n")


if __name__ == "__main__":
    main()
