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
A resumed run goes on logging to the same tracker run (its id is kept in RUN_DIR/trackers.json).
"""
import importlib.util
import json
import os
import time

from .errors import UserError
from .runs import write_json

NAMES = ("mlflow", "tensorboard", "wandb")
PACKAGES = {"mlflow": ("mlflow", "mlflow"), "tensorboard": ("tensorboard", "tensorboard"),
            "wandb": ("wandb", "wandb")}           # name -> (module to import, pip package)
STATE = "trackers.json"


def check_installed(names):
    """Before anything is written: each asked tracker's package must import (one-line error)."""
    for name in names or ():
        module, package = PACKAGES[name]
        if importlib.util.find_spec(module) is None:
            raise UserError(f"--tracker {name} needs {package}: pip install {package}")


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
        from mlflow.tracking import MlflowClient
        self.client = MlflowClient(tracking_uri=state.get("tracking_uri"))     # None: MLFLOW_TRACKING_URI or local
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
        self.state = {"run_id": self.run_id, "tracking_uri": self.client.tracking_uri}

    def params(self, config):
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
        self.client.set_terminated(self.run_id, {"completed": "FINISHED", "interrupted": "KILLED"}.get(status,
                                                                                                       "FAILED"))


class TensorBoard:
    def __init__(self, run_dir, state):
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(log_dir=os.path.join(run_dir, "tensorboard"))
        self.state = {"log_dir": self.writer.log_dir}

    def params(self, config):
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=1, default=str) + "\n```", 0)

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
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "biosig"), dir=os.path.abspath(run_dir),
                              name=os.path.basename(os.path.abspath(run_dir)), id=state.get("id"), resume="allow")
        self.state = {"id": self.run.id, "dir": self.run.dir}

    def params(self, config):
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

    start(config) once; epoch(row) after each epoch; finish(summary, files) at the end;
    close(status) always ("completed", "interrupted" or "failed")."""

    def __init__(self, names, run_dir):
        self.run_dir, self.live = run_dir, []
        path = os.path.join(run_dir, STATE)
        saved = {}
        if os.path.exists(path):            # a resumed run: the same tracker runs
            with open(path) as f:
                saved = json.load(f)
        for name in dict.fromkeys(names or ()):
            try:
                self.live.append((name, KINDS[name](run_dir, saved.get(name, {}))))
            except Exception as e:         # a tracking URI that does not answer, W&B online without a key
                self.close("failed")
                first = (str(e).strip().splitlines() or [""])[0][:300]
                raise UserError(f"--tracker {name}: cannot start its run ({type(e).__name__}: {first})") from None
        if self.live:
            write_json(path, {**saved, **{name: t.state for name, t in self.live}})

    def start(self, config):
        for _, t in self.live:
            t.params(config)

    def epoch(self, row):
        values = numbers(row)
        for _, t in self.live:
            t.metrics(values, int(row["epoch"]))

    def finish(self, summary, files):
        values = numbers({k: v for k, v in summary.items() if k not in ("split",)})
        for _, t in self.live:
            t.summary(values)
            for path in files:
                if path and os.path.isfile(path):
                    t.artifact(path)

    def close(self, status):
        while self.live:
            self.live.pop()[1].close(status)
