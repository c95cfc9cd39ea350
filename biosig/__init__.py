"""biosig: train and run models on biosignal windows shaped (N, C, F, T).

N windows, C channels/electrodes, F bands or feature rows per channel (1 for raw time),
T frames. The folders are what a user does, bottom to top; each imports only from the layers
below it, as its own docstring says (tests/test_imports.py checks it, and that there is no
import cycle):

  leaves    errors, atomic, threads, declare, device, checkpoint, normalize, version, named: small
            shared modules that import only each other
  signals/  signals in, with their rate and channels: recordings, windows, band power
  data/     windows and targets from .npy or parquet, checked and split (numpy, no torch)
  models/   the architectures, by name
  tasks/    what is learned (classification, regression, segmentation, pretrain) and metrics
  deploy/   a trained checkpoint used: prediction, streaming, LSL, export
  report/   report.png / report.html of a run or a sweep
  training/ a run from flags to checkpoint (biosig.train(...) runs it from Python)
  sweep/    many runs over a grid or a search
  cli/      the commands: each one's flags and main()

Shims: inference, streaming, windows, convert, export, examples, bandpower. They keep the names
`from biosig.inference import ...`, `from biosig.streaming import ...` and `python -m biosig.X`
have always had; nothing inside biosig imports them.

biosig.train(x=..., y=..., **flags) trains as train.py does, from Python (biosig/training/api.py).
"""

from .version import CHECKPOINT_FORMAT, __version__  # noqa: F401


def train(x=None, y=None, model=None, **flags):
    """Train a model as train.py does, in this process: biosig.train(x=X, y=y, save="m.pt", epochs=5).

    x, y: paths or numpy arrays (X (N, C, F, T) float32, y the targets); model: a --model name;
    flags: train.py's other options by their argparse names (run_dir=..., val_split=0.2,
    task="regression", model_kwargs={"kernel": 9}). Returns the run's summary dict (what
    RUN_DIR/summary.json holds; summary["checkpoint"] is the best checkpoint's path, which
    biosig.inference.load_model_from_checkpoint loads), or None when a resumed run had nothing
    left to train. A bad option is a biosig.errors.UserError with train.py's one line, raised
    before anything is written. (biosig/training/api.py has the details; importing biosig loads no torch.)"""
    from .training.api import train as train_in_process
    return train_in_process(x, y, model, **flags)
