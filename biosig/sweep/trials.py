"""A sweep's trials: one run of train.py each, its directory, and its state on disk.

OUT/trials/<id>/ holds trial.json (its state), log.txt (stdout + stderr), best.pt (train.py
--save) and run/ (train.py --run-dir); an earlier attempt is moved to OUT/previous/<id>.<k>/.
"""
import json
import os
from dataclasses import dataclass, field

from ..data.parquet import is_parquet
from ..errors import UserError
from ..training.options import explicit_options
from ..training.resolve import planned_options
from ..atomic import write_json
from .flags import point_flags, strict_parser
from .grid import trial_id

FAILED = ("failed", "timeout")


@dataclass
class Trial:
    """One run of train.py. `argv` is its command; `base_argv` the same without --run-dir/--save."""
    id: str
    point_id: str
    params: dict
    seed: int              # the seed train.py uses (from --seeds, the flags after --, or its default)
    base_argv: list
    argv: list
    dir: str
    fold: int = None       # with sweep.py --cv: train.py --fold (the validation fold)
    test_fold: int = None  # with --cv K --nested: train.py --test-fold (the outer, held-out fold)
    status: str = "pending"     # pending | incomplete | running | completed | failed | timeout | pruned | interrupted
    exit_code: object = None
    wall_s: float = 0.0         # the sum of attempts_s: every attempt that built run/ (continued from last.pt)
    attempts_s: list = field(default_factory=list)     # seconds of each of those attempts
    error: str = ""
    warm: bool = False          # its last attempt ran in a warm process (biosig.sweep.warm)
    summary: dict = field(default=None, repr=False)
    train_args: object = field(default=None, repr=False)    # its options as train.py resolves them (planned_options)

    @property
    def run_dir(self):
        return os.path.join(self.dir, "run")

    @property
    def checkpoint(self):
        return os.path.join(self.dir, "best.pt")

    @property
    def log(self):
        return os.path.join(self.dir, "log.txt")

    @property
    def state_path(self):
        return os.path.join(self.dir, "trial.json")


def build_trials(points, seeds, train_flags, options, train_parser, out, command_prefix, grid_path, folds=None):
    """One Trial per (point, seed, fold), each command checked by train.py's own parser (types,
    choices) before anything runs, and for its data: --x and --y (not needed with a parquet --x)
    from the flags after -- or the grid. command_prefix: [python, train.py] or launcher +
    [train.py]. folds: (fold, test_fold) pairs (sweep.py --cv), the K in train_flags' --folds."""
    strict_parser(train_parser, "train.py flags after --").parse_args(train_flags)
    data_in_grid = any(flag in ("x", "y") for point in points for flag in point)
    trials = []
    for point in points:
        given = point_flags(point, options)
        for (fold, test_fold), seed in [(f, s) for f in folds or [(None, None)] for s in seeds or [None]]:
            seed_flags = [] if seed is None else ["--seed", str(seed)]
            fold_flags = ([] if fold is None else ["--fold", str(fold)]) + (
                [] if test_fold is None else ["--test-fold", str(test_fold)])
            tid = trial_id(point, seed, fold, test_fold)
            directory = os.path.join(out, "trials", tid)
            # no report per trial: the sweep writes its own (python -m biosig.report TRIAL/run makes one)
            per_trial = ["--run-dir", os.path.join(directory, "run"), "--save", os.path.join(directory, "best.pt"),
                         "--no-report"]
            flags = train_flags + given + fold_flags + seed_flags
            parsed = strict_parser(train_parser, f"{grid_path}: trial {tid}").parse_args(flags + per_trial)
            if not (parsed.x and (parsed.y or is_parquet(parsed.x))):
                where = f"{grid_path}: trial {tid}" if data_in_grid else "train.py flags after --"
                raise UserError(f"{where}: --x X.npy and --y y.npy are needed (after --, or as the grid's "
                                f"x and y; --y may be left out with a parquet --x)")
            if parsed.model == "help":
                raise UserError(f"{grid_path}: trial {tid}: --model help lists the models; it trains none")
            try:        # the model and its options (--model-kwargs, its flags), as train.py will resolve them
                parsed = planned_options(parsed, explicit_options(train_parser, flags + per_trial))
            except UserError as e:
                raise UserError(f"{grid_path if point else 'train.py flags after --'}: trial {tid}: {e}") from None
            trials.append(Trial(id=tid, point_id=trial_id(point), params=point, seed=parsed.seed, fold=fold,
                                test_fold=test_fold, base_argv=command_prefix + flags,
                                argv=command_prefix + flags + per_trial, dir=directory, train_args=parsed))
    return trials


def read_summary(run_dir):
    """train.py's summary.json if the run finished (completed or early-stopped), else None."""
    try:
        with open(os.path.join(run_dir, "summary.json")) as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return None
    if isinstance(summary, dict) and summary.get("status") in ("completed", "early_stopped") and "best" in summary:
        return summary
    return None


def load_state(trial):
    """Set trial.status from OUT: failed/timeout/pruned as recorded, completed if train.py wrote
    its summary, incomplete if an attempt was started, else pending."""
    state = {}
    if os.path.exists(trial.state_path):
        try:
            with open(trial.state_path) as f:
                state = json.load(f)
        except (OSError, ValueError):
            state = {}
    trial.exit_code, trial.error = state.get("exit_code"), state.get("error", "")
    trial.attempts_s = list(state.get("attempts_s") or ([state["wall_s"]] if state.get("wall_s") else []))
    if state.get("status") == "running" and "started_s" in state:
        # the sweep died (SIGKILL, a lost node) without recording the attempt: it ran until its last log line
        try:
            trial.attempts_s.append(max(0.0, os.path.getmtime(trial.log) - state["started_s"]))
        except OSError:
            pass
    trial.wall_s = float(sum(trial.attempts_s))
    trial.summary = read_summary(trial.run_dir)
    if state.get("status") in FAILED + ("pruned",):
        trial.status = state["status"]
    elif trial.summary is not None:
        trial.status = "completed"
    elif os.path.exists(trial.dir):
        trial.status = "incomplete"
    else:
        trial.status = "pending"


def save_state(trial, **extra):
    write_json(trial.state_path, {"id": trial.id, "params": trial.params, "seed": trial.seed, "fold": trial.fold,
                                  "test_fold": trial.test_fold,
                                  "status": trial.status, "exit_code": trial.exit_code,
                                  "wall_s": round(trial.wall_s, 3),
                                  "attempts_s": [round(a, 3) for a in trial.attempts_s],
                                  "error": trial.error, "warm": trial.warm,
                                  "argv": trial.argv, **extra})


def continues(trial):
    """Whether the trial's next attempt continues its interrupted one (train.py --resume run/last.pt)."""
    return trial.status == "incomplete" and os.path.exists(os.path.join(trial.run_dir, "last.pt"))


def continuing_text(trials):
    """" (2 continue from their last.pt)" for those of `trials` whose next attempt resumes, else ""."""
    n = sum(map(continues, trials))
    return f" ({n} continue{'s' if n == 1 else ''} from {'its' if n == 1 else 'their'} last.pt)" if n else ""


def saved_epoch(trial):
    """The last epoch the trial's run saved (the last row of run/metrics.jsonl), or None."""
    try:
        with open(os.path.join(trial.run_dir, "metrics.jsonl"), "rb") as f:
            f.seek(max(0, os.path.getsize(f.name) - 65536))
            rows = f.read().decode(errors="replace").splitlines()
        return int(json.loads(rows[-1])["epoch"])
    except (OSError, ValueError, IndexError, KeyError, TypeError):
        return None


def log_tail(path, lines=4, chars=600):
    """The last non-blank lines of a log, joined with ' | ' (one CSV cell)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 8192))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    # lines starting '$ ' are the commands the sweep wrote at the top of each attempt
    tail = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("$ ")][-lines:]
    return " | ".join(tail)[-chars:]


def move_aside(out, tid):
    """An unfinished or failed attempt OUT/trials/<id> goes to OUT/previous/<id>.<k> (train.py
    never reuses a run dir)."""
    previous = os.path.join(out, "previous")
    os.makedirs(previous, exist_ok=True)
    k = 1
    while os.path.exists(os.path.join(previous, f"{tid}.{k}")):
        k += 1
    os.rename(os.path.join(out, "trials", tid), os.path.join(previous, f"{tid}.{k}"))
