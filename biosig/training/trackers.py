"""Experiment trackers: train.py --tracker mlflow|tensorboard|wandb (repeatable).

Each gets the run's resolved config as parameters, every epoch's metrics.jsonl row (step =
epoch), the summary, and as artifacts the best checkpoint and the report. Only rank 0 logs;
each package is imported only when its tracker is asked for. Everything stays on this machine
unless the user points it elsewhere:
  mlflow       MLFLOW_TRACKING_URI, else MLflow's local default in the working directory
               (MLflow 3: mlflow.db, artifacts in mlruns/; `mlflow ui` there shows the runs);
               experiment MLFLOW_EXPERIMENT_NAME, else "biosig"
  tensorboard  event files in RUN_DIR/tensorboard (tensorboard --logdir runs/)
  wandb        offline (WANDB_MODE=offline unless set), files in RUN_DIR/wandb; `wandb sync` uploads
A resumed run goes on logging to the same MLflow and TensorBoard run (the ids are kept in
RUN_DIR/trackers.json); W&B cannot resume an offline run, so each session of a resumed run is a
W&B run of its own, grouped under the run directory's name. A run stopped before its first
saved epoch leaves nothing: its MLflow run is deleted, its local tracker files removed. A
tracker that fails while the run trains (a server gone) is warned about once and dropped; the
training goes on.
"""
import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import time

from ..errors import UserError, needs, warn
from ..atomic import write_json

NAMES = ("mlflow", "tensorboard", "wandb")
# name -> (modules it needs, what to pip install); MLflow's local default store is sqlite
PACKAGES = {"mlflow": (("mlflow", "sqlalchemy", "alembic"), "mlflow-skinny sqlalchemy alembic"),
            "tensorboard": (("tensorboard",), "tensorboard"), "wandb": (("wandb",), "wandb")}
STATE = "trackers.json"


def check_installed(names):
    """Before anything is written: each asked tracker's packages must import (one-line error)."""
    for name in names or ():
        modules, package = PACKAGES[name]
        if name == "mlflow" and not os.environ.get("MLFLOW_TRACKING_URI", "sqlite").startswith("sqlite"):
            modules = modules[:1]                # a server or a file store needs no database package
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            raise needs(f"--tracker {name}", *package.split())


@contextlib.contextmanager
def _one_at_a_time(key):
    """A lock across processes on this machine (sweep trials starting MLflow on one new database
    would both migrate it)."""
    path = os.path.join(tempfile.gettempdir(), f"biosig-{hashlib.sha1(key.encode()).hexdigest()[:16]}.lock")
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def flatten(config, prefix=""):
    """{"a": {"b": 1}} -> {"a.b": 1}; lists and None as text (trackers take scalars)."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value)
    return flat


def numbers(row):
    """The numeric entries of a metrics row or summary (flattened), without the epoch."""
    return {k: float(v) for k, v in flatten(row).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "epoch"}


class MLflow:
    def __init__(self, run_dir, state):
        import mlflow
        from mlflow.tracking import MlflowClient
        logging.getLogger("mlflow").setLevel(logging.WARNING)      # its INFO lines would break one-line errors
        uri = state.get("tracking_uri") or mlflow.get_tracking_uri()  # MLFLOW_TRACKING_URI, else the local default
        # at the start, a server that does not answer fails in seconds (MLflow retries for minutes)
        quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
        before = {k: os.environ.get(k) for k in quick}
        os.environ.update({k: v for k, v in quick.items() if before[k] is None})
        try:
            with _one_at_a_time(uri):
                self.client = MlflowClient(tracking_uri=uri)
                self.resumed = "run_id" in state
                if self.resumed:
                    self.run_id = state["run_id"]
                    self.client.update_run(self.run_id, status="RUNNING")
                else:
                    name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "biosig")
                    experiment = self.client.get_experiment_by_name(name)
                    experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
                    run = self.client.create_run(experiment_id, run_name=os.path.basename(os.path.abspath(run_dir)),
                                                 tags={"biosig.run_dir": os.path.abspath(run_dir)})
                    self.run_id = run.info.run_id
        finally:
            for k, v in before.items():
                if v is None:
                    os.environ.pop(k, None)
        self.state = {"run_id": self.run_id, "tracking_uri": uri}

    def params(self, config, step):
        if self.resumed:        # MLflow keeps a parameter's first value; a resume may change --epochs
            return
        from mlflow.entities import Param
        params = [Param(k, str(v)[:6000]) for k, v in flatten(config).items()]
        for i in range(0, len(params), 100):                   # log_batch takes up to 100 params a call
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def metrics(self, values, step):
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()])

    def summary(self, values):
        self.metrics({f"summary.{k}": v for k, v in values.items()}, 0)

    def artifact(self, path):
        self.client.log_artifact(self.run_id, path)

    def close(self, status):
        self.client.set_terminated(self.run_id, {"completed": "FINISHED", "interrupted": "KILLED",
                                                 "discarded": "KILLED"}.get(status, "FAILED"))
        if status == "discarded":             # stopped before any epoch was saved: as if it never ran
            self.client.delete_run(self.run_id)


class TensorBoard:
    def __init__(self, run_dir, state):
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(log_dir=os.path.join(run_dir, "tensorboard"))
        self.state = {"log_dir": self.writer.log_dir}

    def params(self, config, step):
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=1, default=str) + "\n```", step)

    def metrics(self, values, step):
        for k, v in values.items():
            self.writer.add_scalar(k, v, step)
        self.writer.flush()

    def summary(self, values):
        self.writer.add_text("summary", "\n".join(f"    {k}: {v:.6g}" for k, v in values.items()), 0)

    def artifact(self, path):
        if path.endswith(".png"):
            import matplotlib.image
            self.writer.add_image(os.path.basename(path), matplotlib.image.imread(path)[..., :3], 0,
                                  dataformats="HWC")
        else:
            self.writer.add_text("artifacts", os.path.abspath(path), 0)

    def close(self, status):
        self.writer.add_text("status", status, 0)
        self.writer.close()


class WandB:
    def __init__(self, run_dir, state):
        import wandb
        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_SILENT", "true")
        self.wandb = wandb
        name, session = os.path.basename(os.path.abspath(run_dir)), state.get("sessions", 0) + 1
        same = os.environ["WANDB_MODE"] != "offline" and state.get("id")     # offline runs cannot be resumed
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "biosig"), dir=os.path.abspath(run_dir),
                              group=name, name=name if session == 1 or same else f"{name} (session {session})",
                              id=state["id"] if same else None, resume="allow" if same else None)
        self.state = {"id": self.run.id, "sessions": session, "ids": state.get("ids", []) + [self.run.id]}

    def params(self, config, step):
        self.run.config.update(flatten(config), allow_val_change=True)

    def metrics(self, values, step):
        self.run.log(values, step=step)

    def summary(self, values):
        self.run.summary.update(values)

    def artifact(self, path):
        artifact = self.wandb.Artifact(f"{self.run.id}-{os.path.basename(path).replace('.', '_')}",
                                       type="model" if path.endswith(".pt") else "report")
        artifact.add_file(path)
        self.run.log_artifact(artifact)

    def close(self, status):
        self.run.finish(exit_code=0 if status == "completed" else 1)


KINDS = {"mlflow": MLflow, "tensorboard": TensorBoard, "wandb": WandB}


class Trackers:
    """The asked trackers of one run, driven by the run on rank 0 (an empty list does nothing).

    start(config) once; epoch(row) after each saved epoch; finish(summary, files) at the end;
    close(status) always: "completed", "interrupted", "failed", or "discarded" (stopped before
    any epoch was saved). resume: the run goes on from last.pt, so are its tracker runs
    (trackers.json); a new run never takes a stale trackers.json."""

    def __init__(self, names, run_dir, resume=False):
        self.run_dir, self.live = run_dir, []
        path = os.path.join(run_dir, STATE)
        saved = {}
        if resume and os.path.exists(path):
            with open(path) as f:
                saved = json.load(f)
        for name in dict.fromkeys(names or ()):
            try:
                self.live.append((name, KINDS[name](run_dir, saved.get(name, {}))))
            except Exception as e:         # a tracking URI that does not answer, W&B online without a key
                self.close("discarded")
                first = (str(e).strip().splitlines() or [""])[0][:300]
                raise UserError(f"--tracker {name}: cannot start its run ({type(e).__name__}: {first})") from None
        if self.live:
            write_json(path, {**saved, **{name: t.state for name, t in self.live}})

    def _each(self, call):
        """call(tracker) for every live tracker; one that fails is warned about once and dropped."""
        for name, t in list(self.live):
            try:
                call(t)
            except Exception as e:
                first = (str(e).strip().splitlines() or [""])[0][:200]
                warn(f"--tracker {name}: logging failed ({type(e).__name__}: {first}); the run goes on without it")
                self.live.remove((name, t))

    def start(self, config, epochs_done=0):
        """The resolved config (at step epochs_done: a resumed run's may differ)."""
        self._each(lambda t: t.params(config, epochs_done))

    def epoch(self, row):
        values = numbers(row)
        self._each(lambda t: t.metrics(values, int(row["epoch"])))

    def finish(self, summary, files):
        values = numbers({k: v for k, v in summary.items() if k not in ("split",)})
        for path in [None] + [p for p in files if p and os.path.isfile(p)]:
            self._each(lambda t: t.summary(values) if path is None else t.artifact(path))

    def close(self, status):
        while self.live:
            name, t = self.live.pop()
            try:
                t.close(status)
            except Exception as e:
                warn(f"--tracker {name}: could not close its run ({type(e).__name__})")
