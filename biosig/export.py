"""Export a checkpoint for deployment: one file that takes raw windows and gives infer.py's predictions.

    python -m biosig.export --ckpt ckpt.pt --out model.onnx     # ONNX: pip install onnx onnxscript
    python -m biosig.export --ckpt ckpt.pt --out model.pt2      # torch.export program (torch.export.save)

The file holds the checkpoint's network (built by biosig.inference.Predictor), its preprocessing
(--standardize's per-(channel, band) mean/std as buffers, then the per-window z-score) and the task's
output transform: output "values" is what `infer.py --out preds.npy` writes for the same windows.
  classification  x (B, C, F, T) -> (B, K) softmax probabilities
  regression      x (B, C, F, T) -> (B, D) in the targets' units ((B,) when the targets were (N,))
  segmentation    x (B, C, F, T) -> (B, T, K) probabilities at the input frames
Pretraining checkpoints are refused (nothing to deploy). "x" is float32; the batch B is dynamic and
C, F, T are static, T the training T (example_input_shape[-1]) for every model: eegnet, shallow and
minirocket are built for it, segmentation maps output to input frames by it, and of the models that
take any T only tcn and resnet1d trace with T dynamic (inception's trace fixes T; eeg2arm's attention
needs is_causal as a Python bool), while infer.py warns that another T may give off predictions.

The written file is then run on seeded random batches of 3 and 1 windows and compared with
Predictor.predict (.onnx with onnxruntime if installed, .pt2 by torch.export.load) before it
replaces --out: a difference above 1e-4 (relative, for outputs above 1) is a bug and raises.
Use:  onnxruntime.InferenceSession("model.onnx").run(["values"], {"x": X})[0]
      torch.export.load("model.pt2").module()(torch.from_numpy(X))
"""
import logging
import os
import warnings

import numpy as np
import torch
from torch import nn

from . import checkpoint, preprocess
from .atomic import atomic_path
from .errors import ArgumentParser, HelpFormatter, UserError, prog
from .inference import Predictor

TOLERANCE = 1e-4


def get_args_parser():
    p = ArgumentParser(prog=prog("biosig.export"), formatter_class=HelpFormatter,
                       description="Export a checkpoint with its preprocessing and output transform baked in.")
    p.add_argument("--ckpt", required=True, help="checkpoint written by train.py --save")
    p.add_argument("--out", required=True, help="model.onnx (needs onnx and onnxscript) or model.pt2 (torch.export)")
    p.add_argument("--step", action="store_true", help="export the per-frame step instead: (x (B, C, F, 1), "
                   "state_0...) -> (class probabilities (B, K), next_state_0...), for models with a fixed-size "
                   "state (tcn); state starts as zeros")
    p.add_argument("--no-check", action="store_true", help="do not compare the written file with PyTorch")
    return p


class Deployed(nn.Module):
    """x (B, C, F, T) raw windows -> "values", as Predictor.predict gives them."""

    def __init__(self, predictor, n_frames):
        super().__init__()
        self.task, self.n_frames = predictor.task, n_frames
        model = predictor.model
        # a model whose forward does not trace (minirocket's data-dependent indexing) gives an equivalent one
        self.net = model.export_module() if hasattr(model, "export_module") else predictor.net
        spec = predictor.preprocess
        self.zscore = spec.get("normalize") == "sample_zscore"
        self.standardize = spec.get("mean") is not None
        if self.standardize:                     # (1, C, F, 1), as preprocess.apply shapes them
            self.register_buffer("input_mean", torch.tensor(spec["mean"], dtype=torch.float32)[None, :, :, None])
            self.register_buffer("input_std", torch.tensor(spec["std"], dtype=torch.float32)[None, :, :, None])

    def forward(self, x):
        if self.standardize:
            x = (x - self.input_mean) / (self.input_std + preprocess.EPS)
        if self.zscore:
            x = preprocess.apply(x, {"normalize": "sample_zscore"})
        return self.task.values(self.net(x), self.n_frames)


class Step(nn.Module):
    """(x (B, C, F, 1) one raw frame, *state) -> (class probabilities (B, K), *next state): the
    model's step_module() with --standardize baked in, as infer.py --stream decodes."""

    def __init__(self, predictor):
        super().__init__()
        self.step = predictor.model.step_module()
        spec, config = predictor.preprocess, predictor.model.config
        standardized = spec.get("mean") is not None                   # else (x - 0) / (1 - EPS + EPS) = x
        shape = (config["n_elec"], config["n_bands"])
        mean = torch.tensor(spec["mean"]) if standardized else torch.zeros(shape)
        std = torch.tensor(spec["std"]) if standardized else torch.ones(shape) - preprocess.EPS
        self.register_buffer("input_mean", mean.float()[None, :, :, None])
        self.register_buffer("input_std", std.float()[None, :, :, None])

    def forward(self, x, *state):
        logits, *after = self.step((x - self.input_mean) / (self.input_std + preprocess.EPS), *state)
        return (torch.softmax(logits, -1), *after)


def export(module, example, path, ext):
    """Trace `module` on the example inputs (a tuple; batch first and dynamic in each) and write it
    to path as .onnx or .pt2: inputs x, state_0...; outputs values, next_state_0..."""
    batch = torch.export.Dim("batch")
    names = ["x"] + [f"state_{i}" for i in range(len(example) - 1)]
    with torch.no_grad():
        shapes = [{0: batch}] + ([({0: batch},) * (len(example) - 1)] if len(example) > 1 else [])   # x, *state
        program = torch.export.export(module, example, dynamic_shapes=shapes)
    if ext == ".pt2":
        with open(path, "wb") as f:              # a file object: torch warns about paths not ending in .pt2
            torch.export.save(program, f)
        return
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)               # "torchvision is not installed. Skipping ..."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(program, f=path, input_names=names, external_data=False, verbose=False,
                              output_names=["values"] + [f"next_{n}" for n in names[1:]])
    finally:
        logger.setLevel(level)


def runner(path, ext):
    """The written file as (run: list of numpy inputs -> list of numpy outputs, runtime's name),
    or None for .onnx without onnxruntime."""
    if ext == ".onnx":
        try:
            import onnxruntime
        except ImportError:
            return None
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return (lambda xs: session.run(None, dict(zip(names, xs)))), f"onnxruntime {onnxruntime.__version__}"
    with open(path, "rb") as f:
        loaded = torch.export.load(f).module()

    def run(xs):
        out = loaded(*map(torch.from_numpy, xs))
        return [t.detach().numpy() for t in (out if isinstance(out, (tuple, list)) else [out])]
    return run, f"torch.export {torch.__version__}"


def random_windows(predictor, gen, shape):
    """Seeded random windows of `shape` (B, C, F, T), around the standardization's mean/std when it has them."""
    spec = predictor.preprocess
    if spec.get("mean") is None:
        return gen.standard_normal(shape).astype(np.float32)
    mean, std = np.array(spec["mean"])[:, :, None], np.array(spec["std"])[:, :, None]
    return (mean + std * gen.standard_normal(shape)).astype(np.float32)


def check_step(path, ext, predictor, shape, module):
    """The written step, run frame by frame from zero state over 2 seeded random recordings of 40
    frames -> "max |diff| ... (runtime)" to Predictor.predict_frames, or None. Raises above the tolerance."""
    found = runner(path, ext)
    if found is None:
        return None
    run, runtime = found
    x = random_windows(predictor, np.random.default_rng(0), (2, *shape[:2], 40))
    state = [s.numpy() for s in module.step.initial_state(2)]
    got = []
    for t in range(x.shape[-1]):
        values, *state = run([np.ascontiguousarray(x[..., t:t + 1]), *state])
        got.append(values)
    worst = float(np.abs(np.stack(got, 1) - predictor.predict_frames(x)["values"]).max())
    if not worst <= TOLERANCE:
        raise AssertionError(f"the exported step {ext}: max |diff| {worst:.3g} to forward_seq ({runtime})")
    return f"max |diff| {worst:.2g} over 40 frames of 2 recordings ({runtime})"


def check(path, ext, predictor, shape):
    """Run the written file on seeded random batches of 3 and 1 windows (C, F, T) = shape, around the
    standardization's mean/std when it has them -> "max |diff| ... (runtime)" to Predictor.predict, or
    None when onnxruntime is missing. Raises (a bug) above the tolerance."""
    found = runner(path, ext)
    if found is None:
        return None
    run, runtime = found
    gen = np.random.default_rng(0)
    worst, scale = 0.0, 1.0
    for b in (3, 1):
        x = random_windows(predictor, gen, (b, *shape))
        want, got = predictor.predict(x)["values"], run([x])[0]
        if got.shape != want.shape:
            raise AssertionError(f"the exported {ext}: output {got.shape}, PyTorch gives {want.shape}")
        worst, scale = max(worst, float(np.abs(got - want).max())), max(scale, float(np.abs(want).max()))
        if not worst <= TOLERANCE * scale:
            raise AssertionError(f"the exported {ext}: max |diff| {worst:.3g} to PyTorch on a batch of {b} ({runtime})")
    relative = f", {worst / scale:.1g} of the outputs' scale" if scale > 1 and worst else ""
    return f"max |diff| {worst:.2g}{relative} ({runtime})"


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    ext = os.path.splitext(args.out)[1]
    if ext not in (".onnx", ".pt2"):
        raise UserError(f"{args.out}: --out must end in .onnx (ONNX) or .pt2 (torch.export program)")
    if ext == ".onnx":
        import importlib
        try:
            for name in ("onnx", "onnxscript"):
                importlib.import_module(name)
        except ImportError:
            raise UserError("exporting .onnx needs onnx and onnxscript: pip install onnx onnxscript") from None
    checkpoint.check_writable(args.out, "--out", inputs=[("--ckpt", args.ckpt)])
    ckpt = checkpoint.load(args.ckpt)
    predictor = Predictor(ckpt, device="cpu", path=args.ckpt)
    if not hasattr(predictor.task, "values"):       # pretraining: its output is a reconstruction error
        raise UserError(f"{args.ckpt}: a pretraining checkpoint (--task {predictor.task.name}) has nothing to deploy; "
                        f"export the model fine-tuned from it (train.py --init {args.ckpt})")
    shape = tuple(ckpt["example_input_shape"][1:])                           # (C, F, T)
    if args.step:
        return main_step(args, ext, predictor, shape)
    module = Deployed(predictor, shape[-1]).eval()
    example = torch.zeros(2, *shape)
    with torch.no_grad():
        out_shape = tuple(module(example).shape[1:])
    with atomic_path(args.out) as tmp:
        export(module, (example,), tmp, ext)
        checked = None if args.no_check else check(tmp, ext, predictor, shape)
    report_check(checked, args, "on 2 random batches")
    print(f"wrote {args.out}: {os.path.getsize(args.out) / 1e6:.2f} MB, "
          f"{'ONNX' if ext == '.onnx' else 'torch.export program'}; model {ckpt['config']['name']}, {predictor.task}\n"
          f"  input  x      (batch, {', '.join(map(str, shape))}) float32: batch dynamic; C, F and T={shape[-1]} "
          f"(the training T) static\n"
          f"  output values (batch{''.join(f', {n}' for n in out_shape)}) float32, "
          f"as infer.py --out preds.npy writes them\n"
          f"  preprocessing baked in: {preprocess.describe(predictor.preprocess)}")


def main_step(args, ext, predictor, shape):
    """--step: the model's per-frame step with its state as inputs and outputs."""
    from .streaming import stream_problem
    name = predictor.model.config["name"]
    problem = stream_problem(predictor)
    if problem:
        raise UserError(f"{args.ckpt}: no per-frame step to export: {problem}")
    if not hasattr(predictor.model, "step_module"):
        raise UserError(f"{args.ckpt}: model {name}'s step has no fixed-size state to export (eeg2arm's key/value "
                        f"cache grows with every frame); export the whole window, or decode with infer.py --stream")
    module = Step(predictor).eval()
    state = module.step.initial_state(2)
    with atomic_path(args.out) as tmp:
        export(module, (torch.zeros(2, *shape[:2], 1), *state), tmp, ext)
        checked = None if args.no_check else check_step(tmp, ext, predictor, shape, module)
    report_check(checked, args, "frame by frame")
    print(f"wrote {args.out}: {os.path.getsize(args.out) / 1e6:.2f} MB, the per-frame step of model {name}\n"
          f"  inputs  x (batch, {shape[0]}, {shape[1]}, 1) one raw frame; state_0..{len(state) - 1}: "
          + ", ".join(f"(batch, {s.shape[1]}, {s.shape[2]})" for s in state) + ", zeros at the start\n"
          f"  outputs values (batch, {predictor.task.n_classes}) class probabilities of this frame; "
          f"next_state_0..{len(state) - 1}, the state for the next frame\n"
          f"  preprocessing baked in: {preprocess.describe(predictor.preprocess)}")


def report_check(checked, args, how):
    if checked:
        print(f"checked against PyTorch {how}: {checked}")
    elif not args.no_check:
        print("check skipped: onnxruntime is not installed (pip install onnxruntime)")


if __name__ == "__main__":
    from .errors import run_cli
    run_cli(main)
