"""biosig's version and checkpoint format (a leaf: biosig/__init__.py re-exports both, and the
modules that record them import them from here, so that no module imports the package root)."""

__version__ = "0.1.0"

# Checkpoints carry this number; infer.py refuses one whose format it does not know.
CHECKPOINT_FORMAT = 1
