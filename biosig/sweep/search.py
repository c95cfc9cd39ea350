"""What a sweep runs its trials from: a fixed list, or an Optuna study (--search optuna, --prune),
alone in OUT/optuna.db or shared with other workers (--storage)."""
from ..errors import UserError
from .processes import Queue
from .results import planned_objective
from .space import corner_points
from .study import StudySource, open_study
from .trials import continuing_text

HEARTBEAT_S = 30        # --heartbeat's default


def check_storage_flags(args):
    """--storage, --study-name, --heartbeat and --workers go together as the help says."""
    if args.storage and args.search != "optuna":
        raise UserError(f"--storage holds the study of --search optuna; --search {args.search} has none to share "
                        f"(its trials run as a SLURM array: --emit-sbatch)")
    for flag, value in (("--study-name", args.study_name), ("--heartbeat", args.heartbeat)):
        if value is not None and not args.storage:
            raise UserError(f"{flag} goes with --storage (a study shared by workers)")
    if args.workers is not None and not (args.emit_sbatch and args.search == "optuna"):
        raise UserError("--workers W goes with --emit-sbatch and --search optuna: the array's W tasks are the "
                        "study's workers")
    if args.emit_sbatch and args.search == "optuna" and args.workers is None:
        raise UserError("--emit-sbatch --search optuna: give --workers W, how many array tasks run the study")


def check_array_modes(args, storage, array):
    """What --emit-sbatch, --trial-index and --collect (`array`) take, with a study or not."""
    if array and args.refit_seeds:
        raise UserError("--refit-seeds runs here once the search is done: give it to a sweep, not with "
                        "--emit-sbatch, --trial-index or --collect")
    if sum(map(bool, (args.emit_sbatch, args.trial_index is not None, args.collect, args.dry_run))) > 1:
        raise UserError("--emit-sbatch, --trial-index, --collect and --dry-run: give one of them")
    if array and args.prune and args.search != "optuna":
        raise UserError("--emit-sbatch, --trial-index and --collect run a fixed list of trials: --prune goes with "
                        "--search optuna there (its array is of workers)")
    if args.trial_index is not None and args.search == "optuna":
        raise UserError("--trial-index runs one trial of a fixed list; an Optuna study's array tasks are workers "
                        "(--emit-sbatch FILE --workers W writes them)")
    if args.emit_sbatch and args.search == "optuna" and (not storage.shared or storage.url.startswith("sqlite")):
        raise UserError("--emit-sbatch --search optuna: the workers share one study; give --storage "
                        "postgresql://USER@HOST/DB, or journal:PATH on the shared filesystem (SQLite, OUT/optuna.db "
                        "or sqlite:///, locks badly over NFS)")


def _open(args, out, grids, trials, build, storage):
    """(the study, the objective's name) as this command asks for them."""
    name, mode = planned_objective(trials or build(corner_points(grids)[0]), args.metric, args.mode)
    each = " ".join([f"--seeds {' '.join(map(str, args.seeds))}" if args.seeds else "no --seeds",
                     f"--cv {args.cv}" + (" --nested" if args.nested else "") if args.cv else "no --cv"])
    kept = {"search space": grids[0], "trials per point": each} if storage.shared else None  # every worker's
    study = open_study(storage, name, mode, args.sample_seed, kept, args.heartbeat or HEARTBEAT_S)
    return study, name


def _source(args, out, study, name, trials, grids, build, storage, **kw):
    shared = (storage.kind, args.heartbeat or HEARTBEAT_S) if storage.shared else None
    return StudySource(study, build, args.metric, name, trials, out, prune=args.prune, retry=args.retry_failed,
                       shared=shared, **kw)


def trial_source(args, out, grids, trials, todo, build, storage):
    """What the sweep runs -> (source: a Queue of the trials `todo`, or the Optuna study's
    StudySource with --search optuna or --prune; trials done; trials to run; the start-up
    line's counts)."""
    n_done = sum(t.status == "completed" for t in trials)
    source, n_todo = Queue(todo), len(todo)
    counts = f"{len(trials)} trials, {n_done} done, {len(todo)} to run{continuing_text(todo)}"
    if args.search == "optuna":
        study, name = _open(args, out, grids, trials, build, storage)
        source = _source(args, out, study, name, trials, grids, build, storage, space=grids[0], n_points=args.trials)
        per_point = len(build(corner_points(grids)[0]))
        n_done, n_todo = sum(t.status == "completed" for t in trials), source.left * per_point
        # points, not trials: TPE proposes each as the sweep goes (a stopped one is asked again)
        counts = (f"optuna: {args.trials} point(s), {source.finished_points} done, {source.left} to run"
                  + (f" as up to {n_todo} trials ({per_point} per point)" if per_point > 1 else "")
                  + continuing_text(source.resumed)
                  + (f" | study {storage.study} on {storage.shown}, worker {source.live.me}" if storage.shared
                     else ""))
    elif args.prune:
        study, name = _open(args, out, grids, trials, build, storage)
        order = list(dict.fromkeys(t.point_id for t in todo))
        source = _source(args, out, study, name, trials, grids, build, storage,
                         points=[[t for t in trials if t.point_id == p] for p in order])
    return source, n_done, n_todo, counts


def study_members(args, out, storage, grids, trials, build):
    """--collect with --search optuna: every member trial of every point the study has asked."""
    study, name = _open(args, out, grids, trials, build, storage)
    source = StudySource(study, build, args.metric, name, list(trials), out, space=grids[0], n_points=args.trials,
                         shared=None if not storage.shared else (storage.kind, args.heartbeat or HEARTBEAT_S),
                         collect=True)
    return source.trials
