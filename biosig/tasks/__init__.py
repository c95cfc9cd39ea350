"""What is learned, chosen by name (`--task`). The run, the loop, the checkpoint and infer.py
talk to a task only through the Task contract below and never test which task they hold.
biosig/tasks/base.py has the defaults a task inherits.

A task class has
  name, options              registry key; its train.py options (tuple of declare.Option)
  target_kind                what the data reader checks targets as: "integer" (N,), "frames"
                             (N, T), "float" (N,) or (N, D), or None (no targets: the windows'
                             indices stand in for them)
  monitors, default_monitor  {"val_<metric>": "min" | "max"} (val_loss is every task's)
  select_by                  the "max" monitor that --model auto's cross-validation compares
  model_problem(model_cls)   why a model cannot learn this task (one line), or None
  from_targets(values, targets)   the task for training data: `values` are its options'
                             values, `targets` [(y, where), ...] training first; checks them
and an instance has
  config                     what the checkpoint stores ({"name": ..., ...}); Task(**rest) rebuilds it
                             (a task is a dataclass: base.Task derives config from its fields)
  n_outputs                  the model's output size
  refused_augments           {--augment name: why}: augmentations that would break its targets
  fit(y_train, where)        statistics of the training split's targets (regression's mean/std)
  check_targets(y, where, source)   one set of targets checked (one-line UserError)
  network(model, (N, C, F, T))   the module trained: the model, or a wrapper (per-frame outputs,
                             a decoder) whose own tensors the checkpoint keeps as task_state
  batch(x, y, generator)     a batch as read -> (network input, loss targets); generator: the
                             training step's stream, the same on every rank (None: evaluation)
  least_squares(targets)     what a closed-form linear head fits outputs to: (real targets
                             (N, n_outputs), window weights (N,) or None), or None (base: none)
  strata(y)                  what a stratified split keeps in proportion (None: a random split)
  describe_targets(y)        JSON-able counts for summary.json's split; split_text(train, val)
  loss_sum(outputs, targets) summed over windows, not averaged (batches split over ranks weigh exactly)
  batch_stats(outputs, targets) -> {name: tensor} summed over a training epoch
  train_metrics(sums, n)     those sums -> metrics of the epoch
  report(outputs, targets)   validation metrics (numpy in, dict out)
  row(prefix, metrics)       flat numbers for metrics.jsonl ({"val_acc": ...})
  brief(metrics, full)       "acc=0.9000 f1=0.8990" for the epoch (and test) line
  predict(outputs, targets, n_frames, softmax)   -> {name: (B, ...) numpy}; "values" is preds.npy
  values(outputs, n_frames, softmax)   optional: that "values" in torch ops, so biosig.export can
                             bake it into the exported model (a task without it has nothing to deploy)
  prediction_line(i, row) / records(pred, softmax, flat)   infer.py's lines, .csv (flat) and .jsonl rows
  scores(pred, y, softmax)   infer.py's report in plain numbers (JSON-able; y may be None: {} when
                             nothing is scored); report_lines(scores) prints it as text
and example_data(n, c, f, t, seed) -> (X, y or None) with real signal, so that the contract test
(tests/test_contract.py) trains every registered model on every task it accepts.

Several targets at once: multi.py's MultiTask holds one member task per target and speaks this
contract for them all (built by build_task from its config, never chosen by --task).

Adding a task: one file here with its class, and one line in TASKS.

metrics.py holds the metrics (numpy) the tasks report.

May import: leaves, models.
"""
from .classification import Classification
from .multi import MultiTask, member_tasks
from .pretrain import Pretrain
from .regression import Regression
from .segmentation import Segmentation

TASKS = {t.name: t for t in (Classification, Regression, Segmentation, Pretrain)}
__all__ = ["TASKS", "build_task", "Classification", "Regression", "Segmentation", "Pretrain", "MultiTask",
           "member_tasks"]


def build_task(config):
    """The checkpoint's task entry {"name": ..., **kwargs} -> Task (several targets: MultiTask)."""
    if config["name"] == MultiTask.name:
        return MultiTask.from_config(config, build_task)
    kwargs = {k: v for k, v in config.items() if k != "name"}
    return TASKS[config["name"]](**kwargs)


def network_state(net, model):
    """The task network's own tensors (a decoder), without the model's: {} when net is the model."""
    if net is model:
        return {}
    return {k: v.detach().cpu() for k, v in net.state_dict().items() if not k.startswith("model.")}


def load_network_state(net, model, model_state, task_state):
    """Load a checkpoint's model_state (and task_state) into the model inside `net`."""
    model.load_state_dict(model_state)
    if net is not model:
        net.load_state_dict({**{f"model.{k}": v for k, v in model_state.items()}, **(task_state or {})})
