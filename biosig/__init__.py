"""biosig: train and run models on biosignal windows shaped (N, C, F, T).

N windows, C channels/electrodes, F bands or feature rows per channel (1 for raw time),
T frames. The package's file names are its concepts: data, preprocess, models, tasks,
metrics, loop, checkpoint, distributed, runs.
"""

__version__ = "0.1.0"

# Checkpoints carry this number; infer.py refuses one whose format it does not know.
CHECKPOINT_FORMAT = 1
