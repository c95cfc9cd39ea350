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
import argparse
import os
import sys

from biosig.errors import ArgumentParser, UserError, nonnegative_float, nonnegative_int, positive_float, positive_int


def cv_folds(text):
    """--cv: 'loso' or a number of folds >= 2."""
    if text == "loso":
        return text
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of folds (2 or more) or loso, got {text!r}") from None
    if k < 2:
        raise argparse.ArgumentTypeError(f"{text}: cross-validation needs 2 or more folds")
    return k


def get_args_parser():
    p = ArgumentParser(
        description="Run train.py once per point of a JSON grid (x seeds); train.py's shared flags go after --.",
        usage="%(prog)s --grid GRID.json --out OUT [options] -- TRAIN.PY FLAGS")
    p.add_argument("--grid", required=True, help="JSON {flag: [values]} (cartesian product) or a list of them (union)")
    p.add_argument("--out", required=True, help="sweep directory (run the same command again to resume)")
    p.add_argument("--jobs", type=positive_int, help="trials run at the same time (default 1, or one per --gpus group)")
    p.add_argument("--gpus", help="GPU ids, e.g. 0,1,2,3: each running trial gets len(gpus)/jobs of them")
    p.add_argument("--seeds", type=nonnegative_int, nargs="+", metavar="SEED",
                   help="repeat every point with these train.py --seed values")
    p.add_argument("--sample", type=positive_int, help="run only this many points drawn at random from the grid")
    p.add_argument("--sample-seed", type=nonnegative_int, default=0, help="random seed of --sample (default 0)")
    p.add_argument("--cv", type=cv_folds, metavar="K|loso",
                   help="cross-validate every point: run it on each of K folds (train.py --folds K --fold i), or "
                   "leaving one group out (loso: --groups/--group-col after --); rank by the mean over folds")
    p.add_argument("--nested", action="store_true",
                   help="with --cv: hold each fold out in turn as test data and choose the point on the others, "
                   "so the reported test score is of data that chose nothing (K x (K-1) trials per point)")
    p.add_argument("--search", choices=["grid", "random", "optuna"], default="grid",
                   help="grid: every point of --grid; random: --trials points drawn from it (lists and "
                   "distributions, no dependency); optuna: --trials points proposed by TPE (needs optuna), the study "
                   "kept in OUT/optuna.db so that the same command resumes it")
    p.add_argument("--trials", type=positive_int, help="--search random/optuna: how many points to try")
    p.add_argument("--prune", action="store_true",
                   help="stop a point early when its trials are clearly worse at an epoch than earlier points at "
                   "that epoch (Optuna's median rule on metrics.jsonl; needs optuna); recorded as pruned")
    p.add_argument("--storage", metavar="URL",
                   help="--search optuna: keep the study in a database that workers on other machines share: "
                   "postgresql://USER@HOST/DB, mysql://USER@HOST/DB, sqlite:///PATH (one machine) or journal:PATH "
                   "(a file on a shared filesystem). Every sweep.py given it is a worker of the same study. The "
                   "password may be in the URL or in PGPASSWORD / ~/.pgpass / MYSQL_PWD; it is never written "
                   "anywhere. Default: OUT/optuna.db, this sweep alone")
    p.add_argument("--study-name", metavar="NAME", help="with --storage: the study's name (default: OUT's last "
                   "directory name)")
    p.add_argument("--heartbeat", type=positive_int, metavar="S",
                   help="with --storage: each worker marks its running points alive every S seconds (default 30); "
                   "a point whose worker is silent for 2*S is failed and run again by another worker, from its "
                   "last.pt")
    p.add_argument("--workers", type=positive_int, metavar="W",
                   help="with --emit-sbatch and --search optuna: the array's W tasks are workers of the study")
    p.add_argument("--refit-seeds", type=nonnegative_int, nargs="+", metavar="SEED",
                   help="once the search is done, train its best point again with each seed on all the training "
                   "windows and report mean ± std on --x-test (OUT/refit.json)")
    p.add_argument("--metric", help="objective from each trial's summary.json: val_f1, val_acc, val_loss, "
                   "val_mae, wall_s, ... (default: what train.py monitored)")
    p.add_argument("--mode", choices=["min", "max"], help="whether the objective is minimized (default: "
                   "train.py's mode for its monitor, else the task's for its metric; else min for losses and "
                   "wall_s, max otherwise)")
    p.add_argument("--timeout", type=positive_float, help="stop a trial after this many seconds (recorded as timeout)")
    p.add_argument("--grace", type=nonnegative_float, default=10.0,
                   help="seconds between SIGTERM and SIGKILL when stopping a trial (default 10)")
    p.add_argument("--retry-failed", action="store_true", help="re-run failed and timed-out trials too")
    p.add_argument("--launcher", help="command put before train.py, e.g. 'torchrun --nproc_per_node=2' "
                   "or 'srun -N1 -n1 --gres=gpu:1 python' (split like a shell would, never run by one)")
    p.add_argument("--no-warm-start", action="store_true",
                   help="start each trial as a fresh Python (default: fork it from one process that imported "
                   "torch once, saving ~2 s a trial; never with --launcher)")
    p.add_argument("--emit-sbatch", metavar="FILE", help="write a SLURM job-array script running one trial per "
                   "array task (the trials still to run; with --search optuna, --workers W workers of the study), "
                   "and run nothing here; see docs/sweep.md")
    p.add_argument("--sbatch", metavar="OPTIONS", help="with --emit-sbatch: #SBATCH options for every task, e.g. "
                   "'--time=02:00:00 --gres=gpu:1 --cpus-per-task=4'")
    p.add_argument("--trial-index", type=nonnegative_int, metavar="I",
                   help="run only trial I (what a job-array task does, with $SLURM_ARRAY_TASK_ID)")
    p.add_argument("--collect", action="store_true",
                   help="run nothing: write trials.csv, summary.csv, best.json from what the trials wrote")
    p.add_argument("--no-report", action="store_true", help="do not write OUT/report.png and report.html (the "
                   "objective against each swept flag, the ranked points; needs matplotlib)")
    p.add_argument("--dry-run", action="store_true", help="print every trial's command; run and write nothing")
    return p


def train_script():
    """The file each trial runs with Python: biosig-train beside this biosig-sweep (an installed
    package), else the checkout's train.py beside the biosig package, else biosig-train on PATH."""
    import shutil
    here = os.path.dirname(os.path.abspath(sys.argv[0])) if sys.argv and sys.argv[0] else ""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for path in (os.path.join(here, "biosig-train"), os.path.join(root, "train.py"), shutil.which("biosig-train")):
        if path and os.path.isfile(path):
            return path
    raise UserError("cannot find train.py or biosig-train for the trials; install biosig (pip install .) "
                    "or run sweep.py from a checkout")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    own, train_flags = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args = get_args_parser().parse_args(own)
    from biosig.training.options import train_parser
    from biosig.sweep.driver import run_sweep
    return run_sweep(args, train_flags, train_parser(), train_script())


if __name__ == "__main__":
    from biosig.errors import run_cli
    sys.exit(run_cli(main))
