"""Trials as processes: started from argv lists (never a shell string) in their own sessions,
len(envs) at a time, each with its share of GPUs and cores; stopped as whole process groups
on Ctrl-C, SIGTERM or a timeout, and never left behind if the sweep itself dies."""
import ctypes
import os
import shlex
import signal
import subprocess
import time

from ..threads import quiet_waiting, usable_cpus
from . import warm
from .trials import continues, log_tail, move_aside, read_summary, save_state, saved_epoch


def _die_with_parent_fn():
    """Linux: a preexec function asking the kernel to SIGTERM the trial when the sweep dies,
    even by SIGKILL, so no trial outlives its sweep. None elsewhere."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec():
        prctl(1, signal.SIGTERM)            # PR_SET_PDEATHSIG
        if os.getppid() != parent:          # the sweep died before prctl
            os.kill(os.getpid(), signal.SIGTERM)
    return preexec


def stop_groups(procs, grace, hurry=lambda: False):
    """SIGTERM each process's group, wait up to `grace` s for the leaders (less if hurry()),
    then SIGKILL the groups (also what is left of a group whose leader has exited)."""
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and not hurry() and any(p.poll() is None for p in procs):
        time.sleep(0.05)
    for proc in procs:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()


def _signal_group(proc, signum):
    try:
        os.killpg(proc.pid, signum)         # start_new_session: the group id is the leader's pid
    except (ProcessLookupError, PermissionError):
        pass


class Signals:
    """Catches SIGINT/SIGTERM while trials run: the loop stops them and exits 128 + signal."""

    def __init__(self):
        self.signum, self.count, self.saved = None, 0, {}

    def __enter__(self):
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.saved[signum] = signal.signal(signum, self.handle)
        return self

    def handle(self, signum, frame):
        self.signum = self.signum or signum
        self.count += 1

    def __exit__(self, *exc):
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)


def trial_envs(jobs, gpus):
    """One environment per parallel slot: its CUDA_VISIBLE_DEVICES (len(gpus) // jobs GPUs each)
    and OMP/MKL threads = usable CPUs // jobs (biosig.threads: affinity, cgroup quota, SLURM), so
    parallel trials do not oversubscribe the CPU (never more than an OMP_NUM_THREADS the sweep
    itself was given: a cluster job's share, say). A train.py --threads after `--` still wins."""
    cpus, _ = usable_cpus()
    threads = max(1, cpus // jobs)
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        threads = min(threads, int(os.environ["OMP_NUM_THREADS"]))
    threads = str(threads)
    envs = []
    for slot in range(jobs):
        env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, PYTHONUNBUFFERED="1")
        quiet_waiting(env)              # GOMP_SPINCOUNT=10000 unless the user set a policy (biosig/threads.py)
        if gpus:
            per = len(gpus) // jobs
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[slot * per:(slot + 1) * per])
        envs.append(env)
    return envs


def start_trial(trial, env, out, preexec, forker=None):
    """Launch one trial: forked from the warm process (`forker`) when there is one, else a
    fresh process. An interrupted attempt that saved run/last.pt continues from it (train.py
    --resume); any other earlier attempt is moved aside and the trial starts afresh."""
    last = os.path.join(trial.run_dir, "last.pt")
    continuing = continues(trial)
    if not continuing:
        if os.path.exists(trial.dir):
            move_aside(out, trial.id)
        trial.wall_s, trial.attempts_s, trial.exit_code = 0.0, [], None
    os.makedirs(trial.dir, exist_ok=True)
    argv = trial.argv + (["--resume", last] if continuing else [])
    with open(trial.log, "a" if continuing else "w") as log:
        log.write(f"$ {shlex.join(argv)}\n")
        log.flush()
        proc = forker.start(argv, trial.log, env) if forker is not None else None
        trial.warm = proc is not None
        if proc is None:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True, preexec_fn=preexec)
    trial.status, trial.error = "running", ""
    save_state(trial, pid=proc.pid, started=time.strftime("%Y-%m-%dT%H:%M:%S"), started_s=time.time())
    return proc


def finish_trial(trial, returncode, seconds, status=None, error=None):
    """Record how an attempt ended: completed (exit 0 and a summary.json), failed, timeout, interrupted.
    wall_s sums the attempts that built the run; `error` replaces the log's last lines as the reason."""
    trial.summary = read_summary(trial.run_dir)
    trial.attempts_s.append(seconds)
    trial.exit_code, trial.wall_s = returncode, float(sum(trial.attempts_s))
    if status is None or status == "interrupted" and returncode == 0 and trial.summary is not None:
        # (interrupted: it finished just as the sweep was stopped)
        status = "completed" if returncode == 0 and trial.summary is not None else "failed"
    trial.status = status
    trial.error = ""
    if status == "failed" and returncode == 0:
        trial.error = "train.py exited 0 but wrote no run/summary.json"
    elif error and status != "completed":
        trial.error = error
    elif status not in ("completed", "pruned"):
        trial.error = log_tail(trial.log)
    save_state(trial, finished=time.strftime("%Y-%m-%dT%H:%M:%S"))


class Queue:
    """A fixed list of trials to run, in order: what run_trials takes trials from. A search
    (biosig.sweep.study) has the same methods and makes its trials as slots free up."""

    def __init__(self, todo):
        self.todo = list(todo)

    def next(self):
        """The next trial to start, or None (none now)."""
        return self.todo.pop(0) if self.todo else None

    def exhausted(self):
        return not self.todo

    def finished(self, trial):
        """A trial ended (its status is set)."""

    def to_stop(self, running):
        """Running trials to stop now, as {trial id: status} (pruning)."""
        return {}


def stopped_error(trial, signum, resume):
    """An interrupted trial's error cell: the sweep was stopped (not the trial) and how to resume
    (`resume`: "run the same sweep command", or a requeue for an array task), not train.py --resume."""
    saved = saved_epoch(trial) if os.path.exists(os.path.join(trial.run_dir, "last.pt")) else None
    how = (f"after epoch {saved} was saved: {resume} to continue it from there" if saved is not None
           else f"before it saved an epoch: {resume} to start it again")
    return f"the sweep was stopped by {signal.Signals(signum).name} {how}"


def run_trials(source, envs, out, timeout, grace, on_finish, warm_script=None, resume="run the same sweep command"):
    """Run the trials of `source` (a Queue, or a search), len(envs) at a time. Returns the
    signal number that stopped the sweep, or None. Running trials are always stopped on the
    way out, whatever happens.

    warm_script (train.py's path, or None for none): trials are forked from one warm process
    that imported torch once (biosig.sweep.warm) instead of each starting Python afresh.
    resume: what resumes the sweep, for the error of the trials a signal stopped."""
    preexec = _die_with_parent_fn()
    free, running = list(range(len(envs))), []   # running: (trial, proc, slot, t0)
    forker = warm.Forker(warm_script, envs[0], preexec) if warm_script and not source.exhausted() else None
    with Signals() as caught:
        try:
            while (not source.exhausted() or running) and caught.signum is None:
                while free and caught.signum is None:
                    trial = source.next()
                    if trial is None:
                        break
                    slot = free.pop(0)
                    proc = start_trial(trial, envs[slot], out, preexec, forker)
                    running.append((trial, proc, slot, time.monotonic()))
                stop = source.to_stop([entry[0] for entry in running])
                for entry in list(running):
                    trial, proc, slot, t0 = entry
                    returncode, status = proc.poll(), None
                    if returncode is None and timeout and time.monotonic() - t0 > timeout:
                        stop_groups([proc], grace)
                        returncode, status = proc.returncode, "timeout"
                    elif trial.id in stop:
                        stop_groups([proc], grace)
                        returncode, status = proc.returncode, stop[trial.id]
                    if returncode is not None:
                        running.remove(entry)
                        free.append(slot)
                        finish_trial(trial, returncode, time.monotonic() - t0, status)
                        source.finished(trial)
                        on_finish(trial)
                time.sleep(0.05)
        finally:
            if running:
                stop_groups([proc for _, proc, _, _ in running], grace, hurry=lambda: caught.count > 1)
                for trial, proc, _, t0 in running:
                    why = stopped_error(trial, caught.signum, resume) if caught.signum else None
                    finish_trial(trial, proc.returncode, time.monotonic() - t0, "interrupted", why)
                    on_finish(trial)
            if forker is not None:
                forker.close()
    return caught.signum
