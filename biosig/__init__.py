"""biosig: train and run models on biosignal windows shaped (N, C, F, T).

N windows, C channels/electrodes, F bands or feature rows per channel (1 for raw time),
T frames. The package's file names are its concepts: options, run, loop, resume, runtime,
data/, tasks/, models/, preprocess, metrics, checkpoint, inference, distributed, runs, sweep/
(README.md's Layout section says what each holds).
"""

__version__ = "0.1.0"

# Checkpoints carry this number; infer.py refuses one whose format it does not know.
CHECKPOINT_FORMAT = 1
