"""Past one machine: a sweep as a SLURM job array.

    python sweep.py --grid g.json --out OUT --emit-sbatch OUT/array.sbatch -- --x X.npy ...   # writes it
    sbatch OUT/array.sbatch                      # array task i runs trial i: sweep.py ... --trial-index i
    python sweep.py --grid g.json --out OUT --collect -- --x X.npy ...                     # the results

Each array task runs one trial into its own OUT/trials/<id>/ exactly as a local sweep would
(resuming its last.pt when the task is requeued), holding OUT/.lock shared, so that tasks run
side by side but never beside a local sweep of the same OUT. Emitting again writes an array of
only the trials still to run (pending, interrupted, and failed ones with --retry-failed).

With --search optuna the array is of workers instead (--workers W): every task runs the sweep
command itself against the shared study (--storage), asking for points until the study has
--trials finished (biosig.sweep.workers).
"""
import os
import shlex
import sys

from ..atomic import atomic_path
from ..errors import UserError
from .results import without
from .storage import without_password


def script_text(trials, todo, argv, cwd, out, sbatch_options):
    """The job-array script: one array task per trial index in `todo`."""
    position = {t.id: i for i, t in enumerate(trials)}
    indices = [position[t.id] for t in todo]
    own = argv[:argv.index("--")] if "--" in argv else argv
    rest = argv[argv.index("--"):] if "--" in argv else []
    kept = without(own, ("--emit-sbatch", "--sbatch"))     # the command as given, less the emitting options
    command = [sys.executable, os.path.abspath(sys.argv[0]), *kept, "--trial-index", "TASK", *rest]
    line = shlex.join(command).replace("TASK", '"$SLURM_ARRAY_TASK_ID"', 1)
    head = ["#SBATCH --job-name=biosig-sweep", f"#SBATCH --array={_ranges(indices)}",
            f"#SBATCH --output={os.path.join(out, 'slurm', '%A_%a.out')}"]
    head += [f"#SBATCH {option}" for option in shlex.split(sbatch_options or "")]
    return "\n".join(["#!/bin/bash", *head,
                      f"# {len(indices)} of the {len(trials)} trials of sweep {out}; written by sweep.py --emit-sbatch",
                      "set -euo pipefail", f"cd {shlex.quote(cwd)}", f"exec {line}", ""])


def workers_text(argv, cwd, out, workers, sbatch_options, storage):
    """The array of `workers` tasks, each the sweep command less the emitting options, its
    --storage without a password (the jobs take it from their environment: PGPASSWORD, ~/.pgpass)."""
    own = argv[:argv.index("--")] if "--" in argv else argv
    rest = argv[argv.index("--"):] if "--" in argv else []
    kept = without(own, ("--emit-sbatch", "--sbatch", "--workers", "--storage"))
    command = [sys.executable, os.path.abspath(sys.argv[0]), *kept, "--storage", without_password(storage), *rest]
    head = ["#SBATCH --job-name=biosig-study", f"#SBATCH --array=0-{workers - 1}",
            f"#SBATCH --output={os.path.join(out, 'slurm', '%A_%a.out')}"]
    head += [f"#SBATCH {option}" for option in shlex.split(sbatch_options or "")]
    note = (["# the password is not in this file: export PGPASSWORD (or MYSQL_PWD), or use ~/.pgpass, before sbatch"]
            if storage.password else [])
    return "\n".join(["#!/bin/bash", *head,
                      f"# {workers} workers of the Optuna study {storage.study} on {storage.shown} (sweep {out}); "
                      f"written by sweep.py --emit-sbatch", *note,
                      "set -euo pipefail", f"cd {shlex.quote(cwd)}", f"exec {shlex.join(command)}", ""])


def emit_workers(path, out, workers, sbatch_options, storage):
    os.makedirs(os.path.join(out, "slurm"), exist_ok=True)
    text = workers_text(sys.argv[1:], os.getcwd(), out, workers, sbatch_options, storage)
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
    os.chmod(path, 0o755)
    print(f"{path}: {workers} worker(s) of the study {storage.study} on {storage.shown}\n"
          f"submit: sbatch {shlex.quote(path)}" + (" (with PGPASSWORD or MYSQL_PWD exported)" if storage.password else "")
          + "\nthe workers write the results as they finish; the same sweep.py command with --collect "
            "instead of --emit-sbatch writes them at any time")


def _ranges(indices):
    """[0, 1, 2, 5, 7, 8] -> '0-2,5,7-8' (SLURM's --array syntax)."""
    parts, start = [], None
    for i, index in enumerate(indices):
        if start is None:
            start = index
        if i + 1 == len(indices) or indices[i + 1] != index + 1:
            parts.append(str(start) if start == index else f"{start}-{index}")
            start = None
    return ",".join(parts)


def emit(path, trials, todo, out, sbatch_options):
    """Write the array script (OUT/sweep.json, which the tasks check their command against, is
    written by the sweep)."""
    if not todo:
        raise UserError(f"--emit-sbatch: every trial of {out} has finished; nothing to submit "
                        f"(--retry-failed to include failed ones)")
    os.makedirs(os.path.join(out, "slurm"), exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(script_text(trials, todo, sys.argv[1:], os.getcwd(), out, sbatch_options))
    os.chmod(path, 0o755)
    print(f"{path}: {len(todo)} array task(s) for the {len(trials)} trials of {out}\n"
          f"submit: sbatch {shlex.quote(path)}\n"
          f"then collect: the same sweep.py command with --collect instead of --emit-sbatch")


def pick(trials, index, retry_failed):
    """The trial an array task runs -> (trial, None), or (None, why it has nothing to do)."""
    if not 0 <= index < len(trials):
        raise UserError(f"--trial-index {index}: the sweep has trials 0..{len(trials) - 1}")
    trial = trials[index]
    if trial.status == "completed":
        return None, f"trial {index} ({trial.id}) completed already"
    if trial.status in ("failed", "timeout") and not retry_failed:
        return None, f"trial {index} ({trial.id}) {trial.status}; re-run it with --retry-failed"
    if trial.status == "pruned":
        return None, f"trial {index} ({trial.id}) was pruned"
    return trial, None
