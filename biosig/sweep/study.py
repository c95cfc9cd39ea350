"""An Optuna study behind a sweep: --search optuna (TPE proposes each point) and --prune (any
search: a point whose trials are clearly worse at epoch e than earlier points at epoch e is
stopped, Optuna's median rule reading each trial's metrics.jsonl as it grows).

One Optuna trial is one point of the sweep; its sweep trials (its members) are the point's
folds and seeds. The study lives in OUT/optuna.db (SQLite), so the same command resumes it:
finished points are kept, a point that was running when the sweep was stopped is asked again
with the same values (its members resume from their last.pt), and --trials N tops the study
up to N finished points. optuna is imported only here.
"""
import json
import os
import time

import numpy as np

from ..errors import UserError, needs
from .results import objective
from .space import suggest
from .trials import save_state

STUDY = "sweep"
DONE = ("completed", "failed", "timeout", "pruned")
POLL_S = 1.0           # how often running trials' metrics.jsonl are read for pruning
STEP = 100_000         # the k-th member of a point reports epoch e as step k * STEP + e
STARTUP, WARMUP = 3, 2     # the median rule waits for 3 finished points and prunes from epoch 3 on


def import_optuna():
    try:
        import optuna
    except ImportError:
        raise needs("--search optuna (and --prune)", "optuna") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def open_study(out, name, mode, seed):
    """OUT/optuna.db's study (created, or loaded to resume): TPE seeded by --sample-seed, median pruner.
    A study keeps its objective: resuming it for another metric or direction is refused."""
    optuna = import_optuna()
    path = os.path.join(out, "optuna.db")
    if os.path.exists(path):
        try:
            kept = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{path}").user_attrs.get("objective")
        except KeyError:
            kept = None
        if kept is not None and kept != [name, mode]:
            raise UserError(f"{path}: this study optimizes {kept[0]} ({kept[1]}); the command asks for {name} ({mode}); "
                            f"give the same --metric/--mode, or use another --out")
    study = optuna.create_study(
        storage=f"sqlite:///{os.path.join(out, 'optuna.db')}", study_name=STUDY, load_if_exists=True,
        direction="minimize" if mode == "min" else "maximize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=STARTUP, n_warmup_steps=WARMUP))
    study.set_user_attr("objective", [name, mode])
    # seeded by how far the study has got: a resumed study must not draw its first points again
    study.sampler = optuna.samplers.TPESampler(seed=seed * 100_003 + len(study.get_trials(deepcopy=False)))
    return study


class StudySource:
    """What run_trials takes trials from, for a sweep with a study.

    study: open_study()'s; build(point) -> the point's member Trials (state loaded); metric/name:
    the objective (--metric, and the metrics.jsonl column it is at each epoch); trials: the sweep's
    list of every trial, appended to as points are asked. Either `points` (a grid or random
    search: a fixed list, each asked as a study trial when it starts) or `space` and `n_points`
    (--search optuna: TPE proposes up to n_points finished points). retry: --retry-failed, failed
    members run again."""

    def __init__(self, study, build, metric, name, trials, points=None, space=None, n_points=0, prune=False,
                 retry=False):
        self.study, self.build, self.metric, self.name = study, build, metric, name
        self.trials, self.space, self.prune = trials, space, prune
        self.rerun = ("failed", "timeout") if retry else ()      # --retry-failed
        self.points = list(points or [])
        self.pending, self.groups, self.member_of, self.read, self.last_poll = [], {}, {}, {}, 0.0
        optuna = import_optuna()
        self.State = optuna.trial.TrialState
        finished, self.resumed = 0, []       # resumed: the members of the points asked again
        for t in study.get_trials(deepcopy=False):
            if t.state == self.State.RUNNING:       # the sweep was stopped: ask it again, same values
                study.tell(t.number, state=self.State.FAIL)
                if space is not None:
                    study.enqueue_trial(t.params)
                    if "point" in t.user_attrs:
                        self.resumed += self.build(json.loads(t.user_attrs["point"]))
            elif t.state != self.State.FAIL or t.user_attrs.get("final"):
                finished += 1
                if space is not None and "point" in t.user_attrs:    # its members, for the results
                    self._record(self.build(json.loads(t.user_attrs["point"])))
        self.left = max(0, n_points - finished) if space is not None else 0
        self.finished_points = finished

    def _record(self, members):
        known = {t.id for t in self.trials}
        self.trials.extend(m for m in members if m.id not in known)

    def exhausted(self):
        return not (self.pending or self.points or self.left)

    def next(self):
        while not self.pending and (self.points or self.left):
            if self.points:
                members = self.points.pop(0)
                trial = self.study.ask()
            else:
                trial = self.study.ask()
                self.left -= 1
                members = self.build(suggest(trial, self.space))
                self._record(members)
            trial.set_user_attr("point", json.dumps(members[0].params))
            self.groups[trial.number] = (trial, members)
            for m in members:
                self.member_of[m.id] = trial.number
            self.pending = [m for m in members if m.status not in DONE or m.status in self.rerun]
            if not self.pending:        # every member finished in an earlier sweep
                self._tell(trial.number)
        return self.pending.pop(0) if self.pending else None

    def finished(self, trial):
        number = self.member_of.get(trial.id)
        if number is None or number not in self.groups:
            return
        if self.prune:          # the epochs since the last poll, so that later points compare with all of them
            self._report(trial, *self.groups[number])
        if all(m.status in DONE for m in self.groups[number][1]):
            self._tell(number)

    def _report(self, member, trial, members):
        position = [m.id for m in members].index(member.id)
        for row in self._new_rows(member):
            value = row.get(self.name)
            if isinstance(value, (int, float)) and np.isfinite(value):
                trial.report(float(value), position * STEP + int(row["epoch"]))

    def _tell(self, number):
        trial, members = self.groups.pop(number)
        values = [v for v in (objective(m.summary, self.metric) for m in members if m.status == "completed")
                  if v is not None]
        if any(m.status == "pruned" for m in members):
            self.study.tell(trial, state=self.State.PRUNED)
        elif values and len(values) == len(members):
            self.study.tell(trial, float(np.mean(values)))
        else:
            trial.set_user_attr("final", True)      # failed for good (not stopped with the sweep)
            self.study.tell(trial, state=self.State.FAIL)

    def to_stop(self, running):
        """With --prune: report the running members' new epochs; a point the median rule prunes
        has its running members stopped and its waiting ones skipped, all recorded as pruned."""
        if not self.prune or time.monotonic() - self.last_poll < POLL_S:
            return {}
        self.last_poll = time.monotonic()
        stop = {}
        for member in running:
            number = self.member_of.get(member.id)
            if number is None or number not in self.groups:
                continue
            trial, members = self.groups[number]
            self._report(member, trial, members)
            if trial.should_prune():
                for m in members:
                    if m.status == "running":
                        stop[m.id] = "pruned"
                    elif m.status not in DONE:         # not started: never will be
                        m.status = "pruned"
                        os.makedirs(m.dir, exist_ok=True)
                        save_state(m)
                        if m in self.pending:
                            self.pending.remove(m)
        return stop

    def _new_rows(self, member):
        """The rows of the member's metrics.jsonl not read yet (a partial last line waits)."""
        path = os.path.join(member.run_dir, "metrics.jsonl")
        try:
            with open(path) as f:
                f.seek(self.read.get(member.id, 0))
                text = f.read()
        except OSError:
            return []
        complete = text[:text.rfind("\n") + 1]
        self.read[member.id] = self.read.get(member.id, 0) + len(complete)
        rows = []
        for line in complete.splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
        return rows
