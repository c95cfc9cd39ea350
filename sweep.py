"""Run train.py over a grid of its flags (x seeds), in parallel, resumably.

    python sweep.py --grid grid.json --out sweeps/lr --jobs 2 -- --x X.npy --y y.npy --epochs 20
    python sweep.py --grid grid.json --out sweeps/lr --seeds 0 1 2 --gpus 0,1 -- --x X.npy --y y.npy
    python sweep.py --grid grid.json --out sweeps/lr --dry-run -- --x X.npy --y y.npy
    python sweep.py --grid subjects.json --out sweeps/subjects -- --epochs 20   # x and y in the grid

grid.json maps train.py flags (no dashes) to lists of values, e.g. {"lr": [1e-3, 3e-4], "batch": [32, 64]};
the flags after -- are shared by every trial. The data can be grid flags too: one model per subject is
[{"x": ["s01_X.npy"], "y": ["s01_y.npy"]}, {"x": ["s02_X.npy"], "y": ["s02_y.npy"]}].
Results: OUT/trials.csv, OUT/summary.csv, OUT/best.json. Running the same command again resumes.
See docs/sweep.md.
"""
import sys

from biosig.cli.sweep import get_args_parser, main     # the code: biosig/cli/sweep.py

__all__ = ["get_args_parser", "main"]

if __name__ == "__main__":
    from biosig.errors import run_cli
    sys.exit(run_cli(main))
