"""An Optuna study behind a sweep: --search optuna (TPE proposes each point) and --prune (any
search: a point whose trials are clearly worse at epoch e than earlier points at epoch e is
stopped, Optuna's median rule reading each trial's metrics.jsonl as it grows).

One Optuna trial is one point of the sweep; its sweep trials (its members) are the point's
folds and seeds. The study lives in OUT/optuna.db (SQLite), so the same command resumes it:
finished points are kept, a point that was running when the sweep was stopped is asked again
with the same values (its members resume from their last.pt), and --trials N tops the study
up to N finished points. With --storage (biosig.sweep.storage) the study is shared: any number
of sweep.py workers ask it for points until it has N finished (biosig.sweep.workers: who is
gone, and which member runs where). optuna is imported only here and in those two.
"""
import json
import os
import time
import warnings
import zlib

import numpy as np

from ..errors import UserError, needs
from .results import objective
from .space import suggest
from .storage import is_storage_error, open_storage, unreachable
from .trials import load_state, save_state
from .workers import Liveness, Locks, retry_callback, tag

DONE = ("completed", "failed", "timeout", "pruned")
POLL_S = 1.0           # how often running trials' metrics.jsonl, and a shared study's counts, are read
STEP = 100_000         # the k-th member of a point reports epoch e as step k * STEP + e
STARTUP, WARMUP = 3, 2     # the median rule waits for 3 finished points and prunes from epoch 3 on


def import_optuna():
    try:
        import optuna
    except ImportError:
        raise needs("--search optuna (and --prune)", "optuna") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # the heartbeat and its retry callback are marked experimental; the warning would reach every user
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    return optuna


def open_study(storage, name, mode, seed, kept=None, heartbeat_s=None):
    """The study (created, or loaded to resume or to join): TPE seeded by --sample-seed (and, when
    shared, by the worker, so that workers propose different points), median pruner. A study
    keeps its objective and the `kept` attributes ({"search space": ..., ...}): a command
    asking for another metric, direction or space is refused."""
    optuna = import_optuna()
    where = (f"{storage.url[len('sqlite:///'):]}" if storage.kind == "local"
             else f"--storage {storage.shown} study {storage.study}")
    other = "another --out" if storage.kind == "local" else "another --study-name"
    backend = open_storage(storage, optuna, heartbeat_s, retry_callback(optuna))
    try:
        study = optuna.create_study(
            storage=backend, study_name=storage.study, load_if_exists=True,
            direction="minimize" if mode == "min" else "maximize",
            pruner=optuna.pruners.MedianPruner(n_startup_trials=STARTUP, n_warmup_steps=WARMUP))
        attrs = study.user_attrs
        n = len(study.get_trials(deepcopy=False))
    except Exception as e:      # noqa: BLE001 -- a server that refuses, a file that cannot be written
        if not is_storage_error(e, storage):
            raise
        raise unreachable(storage, e) from None
    if attrs.get("objective") is not None and attrs["objective"] != [name, mode]:
        was = attrs["objective"]
        raise UserError(f"{where}: this study optimizes {was[0]} ({was[1]}); the command asks for {name} ({mode}); "
                        f"give the same --metric/--mode, or use {other}")
    for key, value in (kept or {}).items():
        value = json.loads(json.dumps(value))
        if attrs.get(key) is not None and attrs[key] != value:
            raise UserError(f"{where}: this study's {key} is {json.dumps(attrs[key])}, the command's is "
                            f"{json.dumps(value)}: every worker runs the study's command (or use {other})")
        study.set_user_attr(key, value)
    study.set_user_attr("objective", [name, mode])
    # seeded by how far the study has got: a resumed study must not draw its first points again
    worker = zlib.crc32(tag().encode()) if storage.shared else 0
    study.sampler = optuna.samplers.TPESampler(seed=(seed * 100_003 + n + worker) % 2**32,
                                               constant_liar=storage.shared)
    return study


class StudySource:
    """What run_trials takes trials from, for a sweep with a study.

    study: open_study()'s; build(point) -> the point's member Trials (state loaded); metric/name:
    the objective (--metric, and the metrics.jsonl column it is at each epoch); trials: the sweep's
    list of every trial, appended to as points are asked. Either `points` (a grid or random
    search: a fixed list, each asked as a study trial when it starts) or `space` and `n_points`
    (--search optuna: TPE proposes until the study has n_points finished points). retry:
    --retry-failed, failed members run again. out: the sweep's directory (OUT/locks: a member
    runs once at a time). shared: (storage kind, heartbeat s) when other workers run the study
    too (--storage), else None (OUT/optuna.db: this sweep alone). collect: only read the
    study's points (--collect), changing nothing."""

    def __init__(self, study, build, metric, name, trials, out, points=None, space=None, n_points=0, prune=False,
                 retry=False, shared=None, collect=False):
        self.study, self.build, self.metric, self.name = study, build, metric, name
        self.trials, self.space, self.prune, self.n_points = trials, space, prune, n_points
        self.rerun = ("failed", "timeout") if retry else ()      # --retry-failed
        self.points = list(points or [])
        self.pending, self.groups, self.member_of, self.read, self.last_poll = [], {}, {}, {}, 0.0
        self.elsewhere, self.built, self.counts, self.counted_at = [], {}, None, 0.0
        optuna = import_optuna()
        self.State, self.Finished = optuna.trial.TrialState, optuna.exceptions.UpdateFinishedTrialError
        self.live, self.locks = None, Locks(out)
        self.resumed = []       # the members of points asked again (alone: stopped with the sweep)
        if shared is not None:
            self.live = Liveness(study, *shared, optuna)
            if not collect:
                self.live.reclaim()
        for t in study.get_trials(deepcopy=False):
            if t.state == self.State.RUNNING and shared is None and not collect:   # the sweep was stopped: ask it again
                study.tell(t.number, state=self.State.FAIL)
                if space is not None:
                    study.enqueue_trial(t.params)
                    if "point" in t.user_attrs:
                        self.resumed += self.build(json.loads(t.user_attrs["point"]))
        self.record_all()
        self.finished_points = self._count()["finished"]

    def _counted(self, t):
        """A finished point: completed, pruned, or failed for good (not stopped with a worker)."""
        return t.state in (self.State.COMPLETE, self.State.PRUNED) or (
            t.state == self.State.FAIL and bool(t.user_attrs.get("final")))

    def _count(self, fresh=True):
        """{"finished", "live" (finished or running), "waiting"} points of the study, read at most
        once a POLL_S unless `fresh`."""
        if fresh or self.counts is None or time.monotonic() - self.counted_at > POLL_S:
            trials = self.study.get_trials(deepcopy=False)
            finished = sum(map(self._counted, trials))
            self.counts = {"finished": finished, "live": finished + sum(t.state == self.State.RUNNING for t in trials),
                           "waiting": sum(t.state == self.State.WAITING for t in trials)}
            self.counted_at = time.monotonic()
        return self.counts

    @property
    def left(self):
        return max(0, self.n_points - self.finished_points) if self.space is not None else 0

    def record_all(self):
        """Every point the study has asked (by any worker) into self.trials, for the results;
        other workers' members have their state read again."""
        if self.space is None:
            return
        for t in self.study.get_trials(deepcopy=False):
            point = t.user_attrs.get("point")
            if point is not None and point not in self.built:
                self.built[point] = self.build(json.loads(point))
                self._record(self.built[point])
        if self.live is not None:
            mine = {m.id for _, members in self.groups.values() for m in members}
            for m in self.trials:
                if m.id not in mine:
                    load_state(m)

    def _record(self, members):
        known = {t.id for t in self.trials}
        self.trials.extend(m for m in members if m.id not in known)

    def exhausted(self):
        if self.pending or self.points or self.groups or self.elsewhere:
            return False
        return self.space is None or self._count(fresh=False)["finished"] >= self.n_points

    def _may_ask(self):
        if self.space is None:
            return bool(self.points)
        counts = self._count(fresh=False)
        return counts["waiting"] > 0 or counts["live"] < self.n_points

    def _surplus(self, trial):
        """Whether `trial` is past the study's n_points: as many earlier trials are finished or
        running (two workers asked at once for the last point)."""
        earlier = [t for t in self.study.get_trials(deepcopy=False) if t.number < trial.number]
        return sum(self._counted(t) or t.state == self.State.RUNNING for t in earlier) >= self.n_points

    def next(self):
        self._check_elsewhere()
        while not self.pending and (self.points or self._may_ask()):
            trial = self.study.ask()
            self.counts = None
            if self.points:
                members = self.points.pop(0)
            else:
                if self.live is not None:
                    self.live.started(trial)
                    if self._surplus(trial):
                        trial.set_user_attr("surplus", True)
                        self.study.tell(trial, state=self.State.FAIL)
                        break
                members = self.build(suggest(trial, self.space))
                members = self.built.setdefault(json.dumps(members[0].params), members)   # asked before: the same
                for m in members:
                    load_state(m)
                self._record(members)
            trial.set_user_attr("point", json.dumps(members[0].params))
            self.groups[trial.number] = (trial, members)
            for m in members:
                self.member_of.setdefault(m.id, []).append(trial.number)
            self.pending = [m for m in members if m.status not in DONE or m.status in self.rerun]
            if not self.pending:        # every member finished in an earlier sweep
                self._tell(trial.number)
        while self.pending:
            member = self.pending.pop(0)
            if not self.locks.take(member.id):
                self.elsewhere.append(member)       # another worker runs it: its result is read later
                continue
            load_state(member)          # as it is now: another worker may have finished it
            if member.status in DONE and member.status not in self.rerun:
                self.finished(member)
                continue
            return member
        return None

    def _check_elsewhere(self):
        """Members another worker was running: finished (then counted here too), or ours to run."""
        if not self.elsewhere or time.monotonic() - self.last_poll < POLL_S:
            return
        for member in list(self.elsewhere):
            if self.locks.take(member.id):      # free now: next() takes it again and reads its state
                self.locks.release(member.id)
                self.elsewhere.remove(member)
                self.pending.append(member)

    def finished(self, trial):
        self.locks.release(trial.id)
        for number in [n for n in self.member_of.get(trial.id, ()) if n in self.groups]:
            if self.prune:          # the epochs since the last poll, so that later points compare with all of them
                self._report(trial, *self.groups[number])
            if all(m.status in DONE for m in self.groups[number][1]):
                self._tell(number)
        if self.live is not None:
            self.record_all()

    def close(self):
        if self.live is not None:
            self.live.close()

    def release(self):
        """A stopped worker hands its running points back: failed and queued again, so that
        another worker continues them from their last.pt now (not a heartbeat later)."""
        self.locks.release_all()
        if self.live is None:
            return
        for trial, _ in list(self.groups.values()):
            self.live.ended(trial)
            self.live.fail(trial)
        self.groups.clear()
        self.live.close()

    def _report(self, member, trial, members):
        position = [m.id for m in members].index(member.id)
        for row in self._new_rows(member):
            value = row.get(self.name)
            if isinstance(value, (int, float)) and np.isfinite(value):
                try:
                    trial.report(float(value), position * STEP + int(row["epoch"]))
                except self.Finished:       # failed as silent by the others (see _taken)
                    return

    def _tell(self, number):
        trial, members = self.groups.pop(number)
        self.counts = None
        if self.live is not None:
            self.live.ended(trial)
        values = [v for v in (objective(m.summary, self.metric) for m in members if m.status == "completed")
                  if v is not None]
        try:
            if any(m.status == "pruned" for m in members):
                self.study.tell(trial, state=self.State.PRUNED)
            elif values and len(values) == len(members):
                self.study.tell(trial, float(np.mean(values)))
            else:
                trial.set_user_attr("final", True)      # failed for good (not stopped with the sweep)
                self.study.tell(trial, state=self.State.FAIL)
        except (ValueError, self.Finished):
            if self.live is None or not self._taken(trial):
                raise

    def _taken(self, trial):
        """Whether the others failed this worker's trial as silent (a stalled or cut-off worker) and
        queued it again: its copy reads the members' results from OUT, so there is nothing to tell."""
        return self.study._storage.get_trial(trial._trial_id).state != self.State.RUNNING

    def to_stop(self, running):
        """Heartbeats (shared study); with --prune: report the running members' new epochs; a
        point the median rule prunes has its running members stopped and its waiting ones
        skipped, all recorded as pruned."""
        if self.live is not None:
            self.live.tick()
        if time.monotonic() - self.last_poll < POLL_S:
            return {}
        self.last_poll = time.monotonic()
        if not self.prune:
            return {}
        stop = {}
        for member in running:
            numbers = [n for n in self.member_of.get(member.id, ()) if n in self.groups]
            if not numbers:
                continue
            trial, members = self.groups[numbers[-1]]
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
