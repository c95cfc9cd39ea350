"""biosig.train(...): train.py as a Python call, on the same path (its parser, resolve, run).

The keyword arguments are train.py's options by their argparse dests (epochs=5, val_split=0.2,
model_kwargs={"depth_mult": 2}); they become the argv train.py would get, so a bad name or value
is the same one-line UserError, raised before anything is written. A file option (x, y, x_val,
y_val, x_test, y_test, groups) may be a numpy array: it is written as .npy to a temporary
directory for the run, and removed after it (such a run cannot be resumed: give paths for that).
"""
import os
import tempfile

from ..errors import UserError
from ..threads import check_environment, quiet_waiting

ARRAYS = ("x", "y", "x_val", "y_val", "x_test", "y_test", "groups")     # the .npy inputs


def train(x=None, y=None, model=None, **flags):
    """Train as `python train.py --x X --y Y --model MODEL --FLAG VALUE ...` would, in this process.

    x, y: paths (.npy, parquet) or numpy arrays (x (N, C, F, T) float32; y (N,) labels, or the
    task's targets); several inputs or targets: dicts {name: path or array} (x={"ppg": ..., "acc":
    ...}, fs={"ppg": 64, "acc": 32}). model: a --model name, "auto", or None for train.py's default. flags:
    train.py's other options by dest (save="m.pt", run_dir="runs/a", epochs=5, task="regression",
    model_kwargs={"kernel": 9} or ["kernel=9"]); True/False for on/off flags, a list for those
    that take several values (augment=["noise"], tracker=["tensorboard"]).

    Returns the run's summary: the dict RUN_DIR/summary.json holds ("checkpoint": the absolute
    path of the best checkpoint, --save; "run_dir"; "best", "best_epoch", "best_metrics",
    "epochs_run", "status", "split", "test" when test windows were given, ...), or None when a
    resumed run (resume=".../last.pt") had nothing left to train, or for model="help" (which
    prints the models). A bad option, a missing input or bad data raises biosig.errors.UserError
    with train.py's one-line message; Ctrl-C raises biosig.errors.Interrupted."""
    given = {"x": x, "y": y, "model": model, **flags}
    with tempfile.TemporaryDirectory(prefix="biosig-train-") as tmp:
        # several inputs or targets ({"ppg": array, ...}) each one array, "x.ppg" and so on
        arrays = {f"{dest}.{name}" if name else dest: value for dest, v in given.items()
                  for name, value in (v.items() if isinstance(v, dict) else [(None, v)]) if _is_array(value)}
        for key in arrays:
            if key.split(".")[0] not in ARRAYS:
                raise UserError(f"train({key.split('.')[0]}=<array>): only {', '.join(ARRAYS)} may be given as arrays")
        paths = {key: os.path.join(tmp, f"{key}.npy") for key in arrays}
        named = {dest: {name: paths.get(f"{dest}.{name}", value) for name, value in v.items()}
                 for dest, v in given.items() if isinstance(v, dict) and dest in ARRAYS}
        from .options import to_argv
        argv = to_argv({**given, **{k: p for k, p in paths.items() if "." not in k}, **named})
        quiet_waiting()                 # before torch loads its OpenMP runtime, as train.py does
        check_environment(argv)
        from .options import explicit_options, train_parser
        parser = train_parser()
        args = parse(parser, argv)
        if args.model == "help":
            from .recipe import describe_models
            print(describe_models())
            return None
        import numpy as np
        for key in (k for k in arrays if k.split(".")[0] == "x" and arrays[k].ndim == 3):
            raise UserError(f"train({key}=<array>): expected windows (N, C, F, T), got shape {arrays[key].shape}; "
                            "raw windows (N, C, T) are x[:, :, None, :]")
        for dest, value in arrays.items():     # only once every option is known good
            np.save(paths[dest], value)
        from .run import run
        try:
            return run(args, explicit_options(parser, argv))
        except UserError as e:                 # name the array the user gave, not our temporary file
            message = str(e)
            for key, path in paths.items():
                message = message.replace(path, f"train({key}=<array>)")
            raise UserError(message) from None


def parse(parser, argv):
    """train.py's parser on argv; a bad flag is a UserError (train.py prints it and exits 2)."""
    def error(message):
        raise UserError(f"{message} (see {parser.prog} --help)")
    parser.error = error
    return parser.parse_args(argv)


def _is_array(value):
    return type(value).__module__ == "numpy" and type(value).__name__ in ("ndarray", "memmap")
