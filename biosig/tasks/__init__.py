"""What is learned, chosen by name (`--task`). The run, the loop, the checkpoint and infer.py
talk to a task only through the Task contract below and never test which task they hold.

A task class has
  name, options              registry key; its train.py options (tuple of options.Option)
  target_kind                what the data reader checks targets as ("integer")
  monitors, default_monitor  {"val_<metric>": "min" | "max"} (val_loss is every task's)
  select_by                  the "max" monitor that --model auto's cross-validation compares
  from_targets(values, targets)   the task for training data: `values` are its options'
                             values, `targets` [(y, where), ...] training first; checks them
and an instance has
  config                     what the checkpoint stores ({"name": ..., ...}); Task(**rest) rebuilds it
  n_outputs                  the model's output size
  check_targets(y, where, source)   one set of targets checked (one-line UserError)
  strata(y)                  what a stratified split keeps in proportion (None: no strata)
  describe_targets(y)        JSON-able counts for summary.json's split; split_text(train, val)
  loss_sum(outputs, targets) summed, not averaged (batches split over ranks weigh exactly)
  batch_stats(outputs, targets) -> {name: tensor} summed over a training epoch
  train_metrics(sums, n)     those sums -> metrics of the epoch
  report(outputs, targets)   validation metrics (numpy in, dict out)
  row(prefix, metrics)       flat numbers for metrics.jsonl ({"val_acc": ...})
  brief(metrics, full)       "acc=0.9000 f1=0.8990" for the epoch (and test) line
  predict(outputs, softmax)  -> (pred, score, values) for infer.py
  prediction_line / prediction_fields / value_columns / report_lines   infer.py's output
and example_data(n, c, f, t, seed) -> (X, y) with real signal, so that the contract test
(tests/test_contract.py) trains every registered model on every task.

Adding a task: one file here with its class, and one line in TASKS.
"""
from .classification import Classification

TASKS = {t.name: t for t in (Classification,)}


def build_task(config):
    """The checkpoint's task entry {"name": ..., **kwargs} -> Task."""
    kwargs = {k: v for k, v in config.items() if k != "name"}
    return TASKS[config["name"]](**kwargs)
