"""The checkpoint file: one self-describing .pt of plain tensors, numbers, strings, lists, dicts.

Keys of a model checkpoint (what --save gets):
  format            CHECKPOINT_FORMAT, bumped when the layout changes
  version           "biosig <version>"
  model_state       state dict of the bare model (no DDP "module." or compile prefixes)
  config            model config: {"name": "eeg2arm", "n_elec": ..., ...}
  task              the task's config, all inference needs ({"name": "classification", "n_classes": K, ...})
  example_input_shape  [1, C, F, T] seen in training (several inputs: {name: [1, C, F, T]}, the
                    model's config then has "modalities", and "signal" is {"inputs": {name: spec}})
  preprocess        see biosig.preprocess (normalization mode and statistics)
  epoch, metrics    when it was saved and its validation metrics
  channels          optional list of C channel names (parquet --signal-cols, --channel-names, X.signal.json)
  signal            the input's contract (biosig.signalspec): fs, channels, units, bandpower; {} if unknown
  task_state        the task network's own tensors beside the model's (pretraining's decoder), or {}
  ledger            the groups (subjects, recordings) it trained and validated on, or None (biosig.ledger)
A resume checkpoint (last.pt) adds optimizer/scheduler/scaler/early-stopping state, totals and options.
Everything loads with torch.load(weights_only=True), which refuses pickled code.
"""
import os
import warnings

import torch

from .version import CHECKPOINT_FORMAT, __version__
from .atomic import atomic_path, can_create_files
from .errors import UserError
from .device import bare_model

REQUIRED = ("format", "model_state", "config", "task", "example_input_shape", "preprocess")


def atomic_save(obj, path):
    """torch.save to a temporary file beside `path`, then rename: a crash leaves the old file."""
    with atomic_path(path, fsync=True) as tmp:
        with open(tmp, "wb") as f:
            torch.save(obj, f)


def check_writable(path, flag="--save", created_with=None, inputs=(), reserved=()):
    """Raise a UserError now, before training, if `path` cannot be written later, or would
    overwrite one of the `inputs` (the data read) or of the `reserved` files (the run's own).

    created_with: a directory the run will create (its run directory, already checked to be
    creatable); a path inside it is fine although its directory does not exist yet."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise UserError(f"{path}: {flag} is a directory, expected a file path")
    target = os.path.realpath(path)
    for flag_in, other in inputs:
        if other and os.path.exists(other) and os.path.realpath(other) == target:
            raise UserError(f"{path}: {flag} would overwrite the input given as {flag_in}; choose another file")
    for other in reserved:
        if os.path.realpath(other) == target:
            raise UserError(f"{path}: {flag} is one of the run directory's own files; choose another name, "
                            f"e.g. best.pt")
    if created_with is not None and not os.path.exists(directory):
        root = os.path.abspath(created_with)
        if os.path.commonpath([root, directory]) == root:
            return
    if not os.path.isdir(directory):
        also = "; only the run directory and directories inside it are created" if created_with else ""
        raise UserError(f"{path}: directory {directory} does not exist ({flag}{also})")
    if not can_create_files(directory) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UserError(f"{path}: not writable ({flag})")


def load(path, what="checkpoint"):
    """Load a biosig checkpoint safely (weights_only=True); validate its keys and format."""
    if os.path.isdir(path):
        hint = (f" (the run's is {os.path.join(path, 'last.pt')})"
                if os.path.exists(os.path.join(path, "last.pt")) else "")
        raise UserError(f"{path}: a directory, expected a {what} file{hint}")
    if not os.path.isfile(path):
        raise UserError(f"{path}: {what} file not found")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - whatever a corrupt or foreign file makes torch.load raise
        raise UserError(f"{path}: {diagnose(path, e)}") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED):
        raise UserError(f"{path}: not a biosig checkpoint (missing keys)")
    if ckpt["format"] != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: checkpoint format {ckpt['format']} (from {ckpt.get('version', '?')}) "
                        f"is not supported by biosig {__version__} (format {CHECKPOINT_FORMAT})")
    # biosig 0.1.0 kept the task's extras beside its entry (class_names, n_classes): fold them in
    legacy = {k: ckpt.pop(k) for k in ("class_names", "n_classes") if k in ckpt}
    if legacy.get("class_names") is not None:
        ckpt["task"] = {**ckpt["task"], "class_names": legacy["class_names"]}
    return ckpt


REFUSED = ("refused: it holds pickled Python objects, not only tensors, numbers, strings, lists and dicts "
           "(loaded with weights_only=True, so none of it ran)")


def diagnose(path, error):
    """What a file that torch.load(weights_only=True) could not read really is, in words: empty,
    a .npy, a truncated checkpoint, a plain pickle, a pickle carrying code (refused), or not a
    checkpoint at all. Only the file's bytes are inspected; nothing is unpickled."""
    with open(path, "rb") as f:
        head = f.read(8)
    if "Unsupported global" in str(error):      # torch's own refusal: the pickle names Python objects
        return REFUSED
    if not head:
        return "an empty file, not a checkpoint"
    if head.startswith(b"\x93NUMPY"):
        return "a .npy array, not a checkpoint"
    if head.startswith(b"PK\x03\x04"):          # torch's zip format
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0].split(". ")[0][:120]
        return f"a truncated or damaged checkpoint ({reason})"
    if head[:1] == b"\x80" and 2 <= head[1] <= 5:  # a pickle stream (protocol 2-5): legacy torch or plain
        names, complete = _pickle_globals(path)
        if names:
            return REFUSED
        if not complete or isinstance(error, EOFError):
            return "a truncated checkpoint (the data ends early)"
        return "a plain Python pickle, not a PyTorch checkpoint"
    return "not a PyTorch checkpoint (neither torch's zip format nor a pickle; text or other data)"


def looks_like_checkpoint(path):
    """Whether the file at `path` is a PyTorch checkpoint by its name or first bytes (torch's zip
    format, or a pickle), e.g. a model.pt given where windows are expected."""
    if os.path.splitext(path)[1].lower() in (".pt", ".pth", ".ckpt"):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head.startswith(b"PK\x03\x04") or (len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5)


def _pickle_globals(path):
    """(names of the Python objects a pickle would import, whether the pickle is complete),
    from its opcodes alone (pickletools never executes anything)."""
    import pickletools
    names = []
    try:
        with open(path, "rb") as f:
            for opcode, arg, _ in pickletools.genops(f):
                if opcode.name in ("GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE"):
                    names.append(arg if arg else opcode.name)
    except (ValueError, EOFError):
        return names, False
    return names, True


def model_payload(model, task, example_input_shape, preprocess, epoch, metrics, channels=None, task_state=None,
                  ledger=None, signal=None):
    return {
        "format": CHECKPOINT_FORMAT,
        "version": f"biosig {__version__}",
        "model_state": {k: v.detach().cpu() for k, v in bare_model(model).state_dict().items()},
        "config": dict(bare_model(model).config),
        "task": task.config,
        "example_input_shape": ({k: list(v) for k, v in example_input_shape.items()}
                                if isinstance(example_input_shape, dict) else list(example_input_shape)),
        "preprocess": preprocess,
        "epoch": epoch,
        "metrics": metrics,
        "channels": channels,
        "task_state": task_state or {},
        "ledger": ledger,
        "signal": signal or {},
    }
