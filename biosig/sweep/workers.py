"""Many sweep.py workers on one Optuna study (--storage): who runs what, and who is gone.

Each worker tags the study trials it asks for (user attribute "worker": host:pid, after the SLURM
array task) and keeps them alive with a heartbeat every --heartbeat S seconds. A running trial
whose heartbeat stops for twice that long is failed and queued again with the same values
(Optuna's stale-trial callback); whichever worker asks next runs it, and its trials continue from
their last.pt. RDB storages keep the heartbeat themselves (Optuna's heartbeat); a journal file
has none, so here its trials carry a beat counter that the others watch change. A worker that
starts again where it died (a requeued SLURM task, or host:pid no longer running) frees its old
trials at once instead of waiting.

A member trial (OUT/trials/<id>) runs in one worker at a time: OUT/locks/<id> is flock-ed while
it runs, so a point proposed to two workers at once is run by one and read by the other.
"""
import fcntl
import os
import socket
import threading
import time

RETRIES = 3             # how many times a trial whose worker died is queued again
BEAT = "biosig:beat"    # a journal trial's heartbeat counter (a system attribute)


def tag():
    """This worker's name in the study: host:pid, after its SLURM array task if it is one."""
    job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    here = f"{socket.gethostname()}:{os.getpid()}"
    return f"slurm:{job}_{task}:{here}" if job and task else here


def gone(other, mine):
    """Whether the worker tagged `other` is surely not running, seen from a worker starting as
    `mine`: an earlier run of this SLURM array task (requeued: on another node, or with its pid
    gone), or a pid no longer alive on this host."""
    same_task = False
    if other.startswith("slurm:"):
        task, _, other = other[len("slurm:"):].partition(":")
        if not mine.startswith(f"slurm:{task}:"):
            return False            # another task's: only its heartbeat tells
        same_task = True
    host, _, pid = other.rpartition(":")
    if host != socket.gethostname():
        return same_task            # this array task, on another node: it was requeued from there
    if not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return True                 # we have only just started: an earlier process with our pid
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


def retry_callback(optuna):
    """Optuna's callback that queues a stale trial again with its values."""
    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    return cls(max_retry=RETRIES)


class Liveness:
    """Heartbeats of this worker's running trials (a thread, so that a busy sweep loop never
    misses one), and the failing (then re-queueing) of others' whose heartbeat stopped (tick(),
    at most once per interval)."""

    def __init__(self, study, kind, interval, optuna):
        self.study, self.interval, self.optuna = study, float(interval), optuna
        self.State = optuna.trial.TrialState
        self.native = kind == "rdb"             # Optuna's own heartbeat
        self.retry = retry_callback(optuna)
        self.me = tag()
        self.seen, self.last, self.count = {}, 0.0, 0
        self.own, self.lock, self.stop = {}, threading.Lock(), threading.Event()
        self.error = None           # the storage error the heartbeat thread met, raised by tick()
        threading.Thread(target=self._beating, daemon=True, name="heartbeat").start()

    def _beating(self):
        while not self.stop.wait(self.interval):
            with self.lock:
                own = list(self.own.values())
            try:
                self._beat(own)
            except Exception as e:      # noqa: BLE001 -- the storage is gone: the main loop says so
                self.error = e
                return

    def reclaim(self):
        """At start: trials left running by a worker that is surely gone are failed and queued again now."""
        for t in self.study.get_trials(deepcopy=False, states=(self.State.RUNNING,)):
            if gone(t.user_attrs.get("worker", ""), self.me):
                self.fail(t)

    def started(self, trial):
        """A trial this worker just asked for: tag it, beat at once and from now on."""
        trial.set_user_attr("worker", self.me)
        self._beat([trial])
        with self.lock:
            self.own[trial.number] = trial

    def ended(self, trial):
        with self.lock:
            self.own.pop(trial.number, None)

    def close(self):
        self.stop.set()

    def tick(self):
        """Fail the trials whose worker has gone silent (at most once per interval)."""
        if self.error is not None:
            raise self.error
        if time.monotonic() - self.last < self.interval:
            return
        self.last = time.monotonic()
        self._reap()

    def _beat(self, own):
        storage = self.study._storage
        for trial in own:
            if self.native:
                storage.record_heartbeat(trial._trial_id)
            else:
                storage.set_trial_system_attr(trial._trial_id, BEAT, f"{self.me}:{self.count}")
        self.count += 1

    def _reap(self):
        if self.native:
            self.optuna.storages.fail_stale_trials(self.study)
            return
        now, running = time.monotonic(), self.study.get_trials(deepcopy=False, states=(self.State.RUNNING,))
        for t in running:
            beat = t.system_attrs.get(BEAT)
            seen = self.seen.get(t.number)
            if seen is None or seen[0] != beat:
                self.seen[t.number] = (beat, now)
            elif now - seen[1] > 2 * self.interval:
                self.fail(t)
        numbers = {t.number for t in running}
        self.seen = {n: s for n, s in self.seen.items() if n in numbers}

    def fail(self, trial):
        """Fail a running trial (a FrozenTrial or Trial) and queue it again, unless another
        worker did first."""
        storage = self.study._storage
        try:
            if not storage.set_trial_state_values(trial._trial_id, state=self.State.FAIL):
                return
        except self.optuna.exceptions.UpdateFinishedTrialError:
            return
        self.retry(self.study, storage.get_trial(trial._trial_id))


class Locks:
    """flock on OUT/locks/<member id> while this worker runs that member (released by the kernel
    if the worker dies)."""

    def __init__(self, out):
        self.dir = os.path.join(out, "locks")
        self.held = {}

    def take(self, member_id):
        """True if this worker now holds the member; False if it runs already, here or elsewhere
        (a point asked twice)."""
        if member_id in self.held:
            return False
        os.makedirs(self.dir, exist_ok=True)
        fd = os.open(os.path.join(self.dir, member_id), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.held[member_id] = fd
        return True

    def release(self, member_id):
        fd = self.held.pop(member_id, None)
        if fd is not None:
            os.close(fd)

    def release_all(self):
        for member_id in list(self.held):
            self.release(member_id)
