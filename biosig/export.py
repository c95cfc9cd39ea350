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
from .errors import ArgumentParser, HelpFormatter, UserError
from .inference import Predictor
from .models.minirocket import LENGTH, MiniRocket, ppv

TOLERANCE = 1e-4


def get_args_parser():
    p = ArgumentParser(prog="python -m biosig.export", formatter_class=HelpFormatter,
                       description="Export a checkpoint with its preprocessing and output transform baked in.")
    p.add_argument("--ckpt", required=True, help="checkpoint written by train.py --save")
    p.add_argument("--out", required=True, help="model.onnx (needs onnx and onnxscript) or model.pt2 (torch.export)")
    p.add_argument("--no-check", action="store_true", help="do not compare the written file with PyTorch")
    return p


class Deployed(nn.Module):
    """x (B, C, F, T) raw windows -> "values", as Predictor.predict gives them."""

    def __init__(self, predictor, n_frames):
        super().__init__()
        self.task, self.n_frames = predictor.task, n_frames
        model = predictor.model
        self.net = MiniRocketExport(model) if isinstance(model, MiniRocket) else predictor.net
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


class MiniRocketExport(nn.Module):
    """MiniRocket's eval forward, x (B, C, F, T) -> logits (B, K), without its data-dependent steps
    (the same numbers): the padded and unpadded kernels of each dilation as constant indices (the
    model finds them with torch.nonzero), PPV by one comparison per bias (torch's ONNX exporter has
    no translation for the model's searchsorted), and no `fitted` check (a buffer read as a bool)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.groups = []                         # per dilation: ([(kernel indices, frames trimmed)], order)
        n_times = model.config["n_times"]
        for i, d, _, _ in model._blocks():
            _, padded = model._conv(torch.zeros(1, model.weight.shape[0], n_times), i)   # the model's rule
            kept = padded.nonzero().flatten().tolist()
            trimmed = (~padded).nonzero().flatten().tolist()
            groups = [(idx, trim) for idx, trim in ((kept, 0), (trimmed, (LENGTH - 1) * d // 2)) if idx]
            order = torch.tensor(sum((idx for idx, _ in groups), [])).argsort().tolist()
            self.groups.append((groups, order))

    def forward(self, x):
        m, x = self.model, x.flatten(1, 2)                                   # (B, rows, T)
        feats = []
        for (i, d, _, bias), (groups, order) in zip(m._blocks(), self.groups):
            out = m._convolve(x, i)[0]                                       # (B, 84, T)
            parts = [ppv(out[:, idx, trim:out.shape[-1] - trim], bias[idx], compare_upto=bias.shape[1])
                     for idx, trim in groups]                                # (B, k, count) each
            feats.append(torch.cat(parts, 1)[:, order].flatten(1))
        return m.head((torch.cat(feats, 1) - m.mean) / m.std)


def export(module, example, path, ext):
    """Trace `module` on example (2, C, F, T), batch dynamic, and write it to path as .onnx or .pt2."""
    batch = torch.export.Dim("batch")
    with torch.no_grad():
        program = torch.export.export(module, (example,), dynamic_shapes={"x": {0: batch}})
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
            torch.onnx.export(program, f=path, input_names=["x"], output_names=["values"], external_data=False,
                              verbose=False)
    finally:
        logger.setLevel(level)


def check(path, ext, predictor, shape):
    """Run the written file on seeded random batches of 3 and 1 windows (C, F, T) = shape, around the
    standardization's mean/std when it has them -> "max |diff| ... (runtime)" to Predictor.predict, or
    None when onnxruntime is missing. Raises (a bug) above the tolerance."""
    if ext == ".onnx":
        try:
            import onnxruntime
        except ImportError:
            return None
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        run, runtime = (lambda x: session.run(["values"], {"x": x})[0]), f"onnxruntime {onnxruntime.__version__}"
    else:
        with open(path, "rb") as f:
            loaded = torch.export.load(f).module()
        run, runtime = (lambda x: loaded(torch.from_numpy(x)).detach().numpy()), f"torch.export {torch.__version__}"
    gen = np.random.default_rng(0)
    spec = predictor.preprocess
    standardized = spec.get("mean") is not None
    mean, std = (np.array(spec["mean"])[:, :, None], np.array(spec["std"])[:, :, None]) if standardized else (0, 1)
    worst, scale = 0.0, 1.0
    for b in (3, 1):
        x = (mean + std * gen.standard_normal((b, *shape))).astype(np.float32)
        want, got = predictor.predict(x)["values"], run(x)
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
        try:
            import onnx  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError:
            raise UserError("exporting .onnx needs onnx and onnxscript: pip install onnx onnxscript") from None
    checkpoint.check_writable(args.out, "--out", inputs=[("--ckpt", args.ckpt)])
    ckpt = checkpoint.load(args.ckpt)
    predictor = Predictor(ckpt, device="cpu", path=args.ckpt)
    if not hasattr(predictor.task, "values"):       # pretraining: its output is a reconstruction error
        raise UserError(f"{args.ckpt}: a pretraining checkpoint (--task {predictor.task.name}) has nothing to deploy; "
                        f"export the model fine-tuned from it (train.py --init {args.ckpt})")
    shape = tuple(ckpt["example_input_shape"][1:])                           # (C, F, T)
    module = Deployed(predictor, shape[-1]).eval()
    example = torch.zeros(2, *shape)
    with torch.no_grad():
        out_shape = tuple(module(example).shape[1:])
    with atomic_path(args.out) as tmp:
        export(module, example, tmp, ext)
        checked = None if args.no_check else check(tmp, ext, predictor, shape)
    if checked:
        print(f"checked against PyTorch on 2 random batches: {checked}")
    elif not args.no_check:
        print("check skipped: onnxruntime is not installed (pip install onnxruntime)")
    print(f"wrote {args.out}: {os.path.getsize(args.out) / 1e6:.2f} MB, "
          f"{'ONNX' if ext == '.onnx' else 'torch.export program'}; model {ckpt['config']['name']}, {predictor.task}\n"
          f"  input  x      (batch, {', '.join(map(str, shape))}) float32: batch dynamic; C, F and T={shape[-1]} "
          f"(the training T) static\n"
          f"  output values (batch{''.join(f', {n}' for n in out_shape)}) float32, "
          f"as infer.py --out preds.npy writes them\n"
          f"  preprocessing baked in: {preprocess.describe(predictor.preprocess)}")


if __name__ == "__main__":
    from .errors import run_cli
    run_cli(main)
