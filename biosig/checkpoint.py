"""The checkpoint file: one self-describing .pt of plain tensors, numbers, strings, lists, dicts.

Keys of a model checkpoint (what --save gets):
  format            CHECKPOINT_FORMAT, bumped when the layout changes
  version           "biosig <version>"
  model_state       state dict of the bare model (no DDP "module." or compile prefixes)
  config            model config: {"name": "eeg2arm", "n_elec": ..., ...}
  task              {"name": "classification", "n_classes": K}
  example_input_shape  [1, C, F, T] seen in training
  preprocess        see biosig.preprocess (normalization mode and statistics)
  epoch, metrics    when it was saved and its validation metrics
  class_names       optional list of K names
A resume checkpoint (last.pt) adds optimizer/scheduler/scaler/RNG/early-stopping state.
Everything loads with torch.load(weights_only=True), which refuses pickled code.
"""
import os
import pickle
import warnings

import torch

from . import CHECKPOINT_FORMAT, __version__
from .atomic import atomic_path, can_create_files
from .errors import UserError

REQUIRED = ("format", "model_state", "config", "task", "example_input_shape", "preprocess")


def atomic_save(obj, path):
    """torch.save to a temporary file beside `path`, then rename: a crash leaves the old file."""
    with atomic_path(path, fsync=True) as tmp:
        with open(tmp, "wb") as f:
            torch.save(obj, f)


def check_writable(path, flag="--save"):
    """Raise a UserError now, before training, if `path` cannot be written later."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise UserError(f"{path}: {flag} is a directory, expected a file path")
    if not os.path.isdir(directory):
        raise UserError(f"{path}: directory {directory} does not exist ({flag})")
    if not can_create_files(directory) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UserError(f"{path}: not writable ({flag})")


def load(path, what="checkpoint"):
    """Load a biosig checkpoint safely (weights_only=True); validate its keys and format."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: {what} file not found")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        with open(path, "rb") as f:
            head = f.read(6)
        if head == b"\x93NUMPY":
            raise UserError(f"{path}: a .npy array, not a checkpoint") from None
        raise UserError(f"{path}: refused: it holds pickled Python objects, not only tensors, numbers, strings, "
                        f"lists and dicts (loaded with weights_only=True, so none of it ran)") from None
    except Exception as e:  # noqa: BLE001 - whatever a corrupt or foreign file makes torch.load raise
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise UserError(f"{path}: not a readable checkpoint ({reason})") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED):
        raise UserError(f"{path}: not a biosig checkpoint (missing keys)")
    if ckpt["format"] != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: checkpoint format {ckpt['format']} (from {ckpt.get('version', '?')}) "
                        f"is not supported by biosig {__version__} (format {CHECKPOINT_FORMAT})")
    return ckpt


def bare_model(model):
    """The nn.Module under DDP and torch.compile wrappers, whose state dict has plain keys."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def model_payload(model, task, example_input_shape, preprocess, epoch, metrics, class_names=None):
    return {
        "format": CHECKPOINT_FORMAT,
        "version": f"biosig {__version__}",
        "model_state": {k: v.detach().cpu() for k, v in bare_model(model).state_dict().items()},
        "config": dict(bare_model(model).config),
        "task": task.config,
        "n_classes": getattr(task, "n_classes", None),
        "example_input_shape": list(example_input_shape),
        "preprocess": preprocess,
        "epoch": epoch,
        "metrics": metrics,
        "class_names": class_names,
    }
