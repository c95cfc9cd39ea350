"""Warm starts: trials forked from one process that has already imported what every trial
imports (torch, torch._dynamo -- which torch.optim imports at its first step -- numpy and
biosig): about 2 s of each trial's start on 2 cores, paid once per sweep instead of per trial.

The warm process (main() below) reads one JSON request per line on stdin, {"argv": [python,
train.py, flags...], "log": path, "env": {...}}, forks, and answers {"started": pid}; when a
trial ends it writes {"exit": pid, "code": exit status as subprocess gives it}. The forked
trial starts its own session, takes the request's environment (and its OMP_NUM_THREADS as
torch's thread count), points stdout and stderr at the log and runs train.py exactly as
`python train.py flags...` would (same sys.argv, sys.path[0] and __main__). The warm process
never runs a torch operation, so no thread pool exists to be broken by fork. It dies with the
sweep, and each trial with it (PR_SET_DEATHSIG), so nothing outlives a killed sweep.

Forker is the sweep's end: Forker.start() returns a process handle with what the sweep uses of
subprocess.Popen (pid, poll, wait, returncode).
"""
import json
import os
import select
import signal
import subprocess
import sys
import time

# run by the sweep as [python, "-c", CODE, package root, train.py]
CODE = "import sys; sys.path.insert(0, sys.argv[1]); from biosig.sweep.warm import main; main(sys.argv[2])"


def command(train_script):
    """The argv that starts a warm process for `train_script`."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return [sys.executable, "-c", CODE, root, train_script]


def _die_with_parent():
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)      # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(script):
    """The warm process: import, then fork one trial per request until stdin closes."""
    import importlib
    sys.path[:2] = [os.path.dirname(os.path.abspath(script))]   # what `python train.py` has first
    for name in ("torch", "torch._dynamo", "numpy", "biosig.training.run"):
        importlib.import_module(name)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    running, reading = set(), True
    while reading or running:
        ready = select.select([0, wake_r] if reading else [wake_r], [], [])[0]
        if wake_r in ready:
            os.read(wake_r, 4096)
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            running.discard(pid)
            _say({"exit": pid, "code": os.waitstatus_to_exitcode(status)})
        if 0 in ready:
            line = sys.stdin.readline()       # one request at a time: the sweep waits for "started"
            if not line:
                reading = False
                continue
            job = json.loads(line)
            pid = os.fork()
            if pid == 0:
                os.close(wake_r)
                os.close(wake_w)
                _trial(job, script)            # never returns
            running.add(pid)
            _say({"started": pid})


def _say(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _trial(job, script):
    """In the forked child: become the trial, run train.py, exit with its status."""
    import runpy
    import traceback
    code = 1
    try:
        os.setsid()                            # its own process group, as a fresh trial has
        _die_with_parent()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(job["env"])
        threads = os.environ.get("OMP_NUM_THREADS", "")
        if threads.isdigit() and int(threads) > 0:
            import torch
            torch.set_num_threads(int(threads))
        log = os.open(job["log"], os.O_WRONLY | os.O_APPEND)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        sys.argv = job["argv"][1:]
        try:
            runpy.run_path(script, run_name="__main__")
            code = 0
        except SystemExit as e:
            if e.code is None or isinstance(e.code, int):
                code = e.code or 0
            else:
                print(e.code, file=sys.stderr)
                code = 1
    except BaseException:                      # a bug: its traceback goes to the trial's log
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


class Forker:
    """The sweep's end of a warm process (started like a trial: own session, dies with the sweep)."""

    def __init__(self, train_script, env, preexec):
        self.proc = subprocess.Popen(command(train_script), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, start_new_session=True,
                                     preexec_fn=preexec)
        self.buffer, self.exits, self.gone = b"", {}, False

    def _pump(self, timeout):
        """Read what the warm process wrote (waiting up to `timeout` s, None: until something
        comes); returns the messages."""
        fd = self.proc.stdout.fileno()
        if self.gone or not select.select([fd], [], [], timeout)[0]:
            return []
        data = os.read(fd, 65536)
        if not data:
            self.gone = True
            return []
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        messages = [json.loads(line) for line in lines if line.strip()]
        for m in messages:
            if "exit" in m:
                self.exits[m["exit"]] = m["code"]
        return messages

    def start(self, argv, log, env):
        """Fork a trial; its handle, or None when the warm process is gone."""
        if self.gone or self.proc.poll() is not None:
            return None
        try:
            self.proc.stdin.write(json.dumps({"argv": argv, "log": log, "env": dict(env)}).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            self.gone = True
            return None
        while not self.gone:
            for m in self._pump(None):
                if "started" in m:
                    return Forked(self, m["started"])
        return None

    def exit_code(self, pid):
        """A forked trial's exit status, or None while it runs."""
        while self._pump(0):
            pass
        if pid in self.exits:
            return self.exits[pid]
        if self.gone:             # nobody will report it: it ended (by the warm process's death) once it is gone
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return -signal.SIGTERM
        return None

    def close(self):
        """Stop the warm process (the trials it forked are stopped by the sweep)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Forked:
    """A forked trial, seen as much like a subprocess.Popen as the sweep needs."""

    def __init__(self, forker, pid):
        self.forker, self.pid, self.returncode = forker, pid, None

    def poll(self):
        if self.returncode is None:
            self.returncode = self.forker.exit_code(self.pid)
        return self.returncode

    def wait(self):
        while self.poll() is None:
            time.sleep(0.02)
        return self.returncode
