"""Wrote tests/data/main_<task>_<model>.pt, X and infer.py's predictions, with biosig at d4ddf1b."""
import subprocess, sys, numpy as np
sys.path.insert(0, "/work/main")
from biosig.tasks import TASKS
R = "/work/main"
out = f"{R}/tests/data"
runs = [("classification", "tcn"), ("regression", "eegnet"), ("segmentation", "tcn"), ("pretrain", "tcn"),
        ("classification", "minirocket"), ("classification", "tangent"), ("regression", "minirocket")]
for task, model in runs:
    X, y = TASKS[task].example_data(80, 3, 1, 32)
    np.save(f"/tmp/fx/{task}_X.npy", X); np.save(f"/tmp/fx/{task}_y.npy", y)
    name = f"main_{task}_{model}"
    extra = ["--standardize"] if task == "pretrain" else []
    cmd = [sys.executable, f"{R}/train.py", "--x", f"/tmp/fx/{task}_X.npy", "--y", f"/tmp/fx/{task}_y.npy",
           "--task", task, "--model", model, "--epochs", "2", "--seed", "0", "--save", f"/tmp/fx/{name}.pt",
           "--run-dir", f"/tmp/fx/run_{name}", *extra]
    if task == "pretrain":
        cmd = [c for c in cmd if c not in ("--y", f"/tmp/fx/{task}_y.npy")]
    p = subprocess.run(cmd, capture_output=True, text=True)
    print(name, p.returncode, p.stderr[-500:])
    if p.returncode: continue
    np.save(f"{out}/{name}_X.npy", X[:16])
    p = subprocess.run([sys.executable, f"{R}/infer.py", "--ckpt", f"/tmp/fx/{name}.pt", "--x", f"{out}/{name}_X.npy",
                        "--out", f"{out}/{name}_preds.npy", "--quiet"], capture_output=True, text=True)
    print("infer", p.returncode, p.stderr[-500:])
    subprocess.run(["cp", f"/tmp/fx/{name}.pt", f"{out}/{name}.pt"])
