"""biosig: train and run models on biosignal windows shaped (N, C, F, T).

N windows, C channels/electrodes, F bands or feature rows per channel (1 for raw time),
T frames. The folders are what a user does, bottom to top; each imports only from the layers
below it, as its own docstring says (tests/test_imports.py checks it, and that there is no
import cycle):

  leaves    errors, atomic, threads, declare, device, checkpoint, normalize: small shared
            modules that import only each other
  signals/  signals in, with their rate and channels: recordings, windows, band power
  data/     windows and targets from .npy or parquet, checked and split (numpy, no torch)
  models/   the architectures, by name
  tasks/    what is learned (classification, regression, segmentation, pretrain) and metrics
  deploy/   a trained checkpoint used: prediction, streaming, LSL, export
  report/   report.png / report.html of a run or a sweep
  train/    a run from flags to checkpoint
  sweep/    many runs over a grid or a search
  cli/      the commands: each one's flags and main()

Shims: inference, streaming, windows, convert, export, examples, bandpower. They keep the names
`from biosig.inference import ...`, `from biosig.streaming import ...` and `python -m biosig.X`
have always had; nothing inside biosig imports them.
"""

__version__ = "0.1.0"

# Checkpoints carry this number; infer.py refuses one whose format it does not know.
CHECKPOINT_FORMAT = 1
