"""Export a checkpoint for deployment: one file that takes what infer.py takes and gives its predictions.

    python -m biosig.export --ckpt ckpt.pt --out model.onnx     # ONNX: pip install onnx onnxscript
    python -m biosig.export --ckpt ckpt.pt --out model.pt2      # torch.export program (torch.export.save)

The file holds the checkpoint's network (built by biosig.inference.Predictor), its preprocessing
(--standardize's per-(channel, band) mean/std as buffers, then the per-window z-score) and the task's
output transform: output "values" is what `infer.py --out preds.npy` writes for the same windows.
A model trained on biosig.bandpower's frames takes raw samples x (B, C, 1, samples) instead, in
the checkpoint's channel order, and computes the frames inside (BandPowerFrames). The file's
metadata "biosig.input" describes x (JSON: kind, shape, fs, channels, units, bandpower, text).
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
A checkpoint of several inputs or several targets is export_several.py's (one input per modality,
one output per target), which uses this module's writer, runners and input descriptions.
"""
import inspect
import json
import logging
import os
import warnings

import numpy as np
import torch

from ..signals import bandpower
from .. import checkpoint, normalize as preprocess
from ..atomic import atomic_path
from ..errors import UserError, needs
from .modules import BandPowerFrames, Deployed, Step  # noqa: F401 (BandPowerFrames: imported from here)
from .predictor import Predictor

TOLERANCE = 1e-4
METADATA = "biosig.input"          # the file's metadata entry that describes its input x (JSON)


# ops torch's ONNX exporter has no translation for: refused in one line, not a traceback from the exporter
NO_ONNX = {"linalg_eigh": "an eigendecomposition (torch.linalg.eigh: the tangent model's matrix logarithm)"}


def export(module, example, path, ext, metadata, inputs=None, outputs=None):
    """Trace `module` on the example inputs (a tuple; batch first and dynamic in each) and write it
    to path as .onnx or .pt2: inputs x, state_0...; outputs values, next_state_0...; metadata
    {key: text} in the file (.onnx: metadata_props; .pt2: extra_files). Several inputs or targets:
    `inputs` names the module's arguments (their names in its forward's signature) and `outputs`
    the entries of the dict it returns, in order."""
    batch = torch.export.Dim("batch")
    names = inputs or ["x"] + [f"state_{i}" for i in range(len(example) - 1)]
    with torch.no_grad():
        if inputs and list(inspect.signature(module.forward).parameters) == inputs:
            shapes = {name: {0: batch} for name in inputs}          # forward(ppg, acc): named in the graph
        elif inputs:
            shapes = [tuple({0: batch} for _ in inputs)]             # forward(*xs)
        else:
            shapes = [{0: batch}] + ([({0: batch},) * (len(example) - 1)] if len(example) > 1 else [])  # x, *state
        program = torch.export.export(module, example, dynamic_shapes=shapes)
    ops = {str(node.target) for graph in program.graph_module.modules() if isinstance(graph, torch.fx.GraphModule)
           for node in graph.graph.nodes}                # submodules too (a no_grad block is one)
    missing = [why for op, why in NO_ONNX.items() if any(op in name for name in ops)]
    if ext == ".onnx" and missing:
        raise UserError(f"--out .onnx: ONNX has no translation for {missing[0]}; export a .pt2 (torch.export) instead")
    if ext == ".pt2":
        with open(path, "wb") as f:              # a file object: torch warns about paths not ending in .pt2
            torch.export.save(program, f, extra_files=metadata)
        return
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)               # "torchvision is not installed. Skipping ..."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(program, f=path, input_names=names, external_data=False, verbose=False,
                              output_names=outputs or ["values"] + [f"next_{n}" for n in names[1:]])
    finally:
        logger.setLevel(level)
    import onnx
    model = onnx.load(path)
    onnx.helper.set_model_props(model, metadata)
    onnx.save(model, path)


def describe_input(predictor, shape, bp, step=False):
    """What the file's input x is -> {"shape": [batch, ...], "kind", "fs", "channels", "units",
    "bandpower", "text", "frames"}: kept in the file as JSON (metadata "biosig.input") and printed
    (text: what x holds; frames: how band-power frames are made, or None)."""
    signal, (c, f, t) = predictor.signal, shape
    channels = signal.get("channels")
    order = f"channels {','.join(channels)} in this order" if channels else "channels in the training data's order"
    units = f", in {signal['units']}" if signal.get("units") else ""
    if bp is not None and not step:
        kind, dims = "raw samples", [c, 1, bp.frame + (t - 1) * bp.hop]
        text = f"raw samples at {bp.fs:g} Hz, {order}{units} ({dims[-1]} samples make the training T={t} frames)"
        frames = f"band power computed inside: {bp.describe()}"
    elif bp is not None:
        kind, dims = "band-power frame", [c, f, 1]
        text = f"one band-power frame, {order}" + (f", from raw samples in {signal['units']}" if units else "")
        frames = (f"band power computed outside the file (biosig.bandpower.BandPower.stream() makes it frame by "
                  f"frame): {bp.describe()}")
    else:
        kind, dims = ("frame", [c, f, 1]) if step else ("windows", [c, f, t])
        what = "one frame of the windows" if step else "windows (C, F, T)"
        rate = f" at {signal['fs']:g} Hz" if signal.get("fs") else ""
        text, frames = f"{what} as infer.py takes them{rate}, {order}{units}", None
    return {"shape": ["batch", *dims], "kind": kind, "fs": signal.get("fs"), "channels": channels,
            "units": signal.get("units"), "bandpower": signal.get("bandpower") if bp is not None else None,
            "text": text, "frames": frames}


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
        out = list(out.values()) if isinstance(out, dict) else out        # several targets: {name: values}
        return [t.detach().numpy() for t in (out if isinstance(out, (tuple, list)) else [out])]
    return run, f"torch.export {torch.__version__}"


def random_windows(spec, gen, shape):
    """Seeded random windows of `shape` (B, C, F, T), around the standardization's mean/std when the
    preprocessing `spec` has them."""
    if spec.get("mean") is None:
        return gen.standard_normal(shape).astype(np.float32)
    mean, std = np.array(spec["mean"])[:, :, None], np.array(spec["std"])[:, :, None]
    return (mean + std * gen.standard_normal(shape)).astype(np.float32)


def random_raw(predictor, bp, gen, shape):
    """Seeded white noise (B, C, 1, samples) scaled so that its band power sits near the
    standardization's mean (where the model's outputs are not saturated)."""
    x = gen.standard_normal(shape)
    mean = predictor.preprocess.get("mean")
    if mean is not None:
        have, want = float(bp(x).mean()), float(np.mean(mean))
        x = x * (10 ** ((want - have) / 2) if bp.log else np.sqrt(max(want, 1e-30) / have))
    return x.astype(np.float32)


def check_step(path, ext, predictor, shape, module):
    """The written step, run frame by frame from zero state over 2 seeded random recordings of 40
    frames -> "max |diff| ... (runtime)" to Predictor.predict_frames, or None. Raises above the tolerance."""
    found = runner(path, ext)
    if found is None:
        return None
    run, runtime = found
    x = random_windows(predictor.preprocess, np.random.default_rng(0), (2, *shape[:2], 40))
    state = [s.numpy() for s in module.step.initial_state(2)]
    got = []
    for t in range(x.shape[-1]):
        values, *state = run([np.ascontiguousarray(x[..., t:t + 1]), *state])
        got.append(values)
    worst = float(np.abs(np.stack(got, 1) - predictor.predict_frames(x)["values"]).max())
    if not worst <= TOLERANCE:
        raise AssertionError(f"the exported step {ext}: max |diff| {worst:.3g} to forward_seq ({runtime})")
    return f"max |diff| {worst:.2g} over 40 frames of 2 recordings ({runtime})"


def check(path, ext, predictor, shape, bp=None):
    """Run the written file on seeded random batches of 3 and 1 windows (C, F, T) = shape, around the
    standardization's mean/std when it has them -> "max |diff| ... (runtime)" to Predictor.predict, or
    None when onnxruntime is missing. Raises (a bug) above the tolerance. With `bp` (a band-power
    checkpoint) the windows are raw samples (C, 1, samples), made into frames by `bp` as infer.py does."""
    found = runner(path, ext)
    if found is None:
        return None
    run, runtime = found
    gen = np.random.default_rng(0)
    worst, scale = 0.0, 1.0
    for b in (3, 1):
        if bp is None:
            x = random_windows(predictor.preprocess, gen, (b, *shape))
        else:
            x = random_raw(predictor, bp, gen, (b, shape[0], 1, bp.frame + (shape[-1] - 1) * bp.hop))
        want, got = predictor.predict(x if bp is None else bp(x))["values"], run([x])[0]
        if got.shape != want.shape:
            raise AssertionError(f"the exported {ext}: output {got.shape}, PyTorch gives {want.shape}")
        worst, scale = max(worst, float(np.abs(got - want).max())), max(scale, float(np.abs(want).max()))
        if not worst <= TOLERANCE * scale:
            raise AssertionError(f"the exported {ext}: max |diff| {worst:.3g} to PyTorch on a batch of {b} ({runtime})")
    relative = f", {worst / scale:.1g} of the outputs' scale" if scale > 1 and worst else ""
    return f"max |diff| {worst:.2g}{relative} ({runtime})"


def load(args):
    """biosig.export's flags checked and its checkpoint loaded -> (--out's extension, the checkpoint,
    its Predictor); a pretraining checkpoint refused."""
    ext = os.path.splitext(args.out)[1]
    if ext not in (".onnx", ".pt2"):
        raise UserError(f"{args.out}: --out must end in .onnx (ONNX) or .pt2 (torch.export program)")
    if ext == ".onnx":
        import importlib
        try:
            for name in ("onnx", "onnxscript"):
                importlib.import_module(name)
        except ImportError:
            raise needs("exporting .onnx", "onnx", "onnxscript") from None
    checkpoint.check_writable(args.out, "--out", inputs=[("--ckpt", args.ckpt)])
    ckpt = checkpoint.load(args.ckpt)
    predictor = Predictor(ckpt, device="cpu", path=args.ckpt)
    if not hasattr(predictor.task, "values"):       # pretraining: its output is a reconstruction error
        raise UserError(f"{args.ckpt}: a pretraining checkpoint (--task {predictor.task.name}) has nothing to deploy; "
                        f"export the model fine-tuned from it (train.py --init {args.ckpt})")
    return ext, ckpt, predictor


def run(args, threads, loaded=None):
    """What biosig.export does with its parsed flags (biosig/cli/export.py): --ckpt written to
    --out (.onnx or .pt2), checked against PyTorch unless --no-check, and described in lines
    ending the first with `threads` (the start-up text). loaded: load(args), when already done
    (a checkpoint of several inputs or targets goes to export_several.run instead)."""
    ext, ckpt, predictor = loaded or load(args)
    shape = tuple(ckpt["example_input_shape"][1:])                           # (C, F, T)
    made = predictor.signal.get("bandpower")           # trained on band-power frames that biosig made
    bp = bandpower.BandPower.from_config(made) if made and len(made["bands"]) == shape[1] else None
    if args.step:
        return main_step(args, ext, predictor, shape, bp, threads)
    module = Deployed(predictor, shape[-1], bp).eval()
    described = describe_input(predictor, shape, bp)
    example = torch.zeros(2, *described["shape"][1:])
    with torch.no_grad():
        out_shape = tuple(module(example).shape[1:])
    with atomic_path(args.out) as tmp:
        export(module, (example,), tmp, ext, {METADATA: json.dumps(described)})
        checked = None if args.no_check else check(tmp, ext, predictor, shape, bp)
    report_check(checked, args, "on 2 random batches" + (" of raw samples" if bp else ""))
    static = "batch dynamic, the rest static" + ("" if bp else f" (T={shape[-1]}, the training T)")
    kind = "ONNX" if ext == ".onnx" else "torch.export program"
    lines = [f"wrote {args.out}: {os.path.getsize(args.out) / 1e6:.2f} MB, {kind}; model {ckpt['config']['name']}, "
             f"{predictor.task} | {threads}",
             f"  input  x      (batch, {', '.join(map(str, described['shape'][1:]))}) float32 {described['text']}: "
             f"{static}",
             described["frames"] and f"  {described['frames']}",
             f"  output values (batch{''.join(f', {n}' for n in out_shape)}) float32, "
             f"as infer.py --out preds.npy writes them",
             f"  preprocessing baked in: {preprocess.describe(predictor.preprocess)}",
             f"  metadata {METADATA!r}: this input's description as JSON"]
    print("\n".join(line for line in lines if line))


def main_step(args, ext, predictor, shape, bp, threads):
    """--step: the model's per-frame step with its state as inputs and outputs."""
    from .streamer import stream_problem
    name = predictor.model.config["name"]
    problem = stream_problem(predictor)
    if problem:
        raise UserError(f"{args.ckpt}: no per-frame step to export: {problem}")
    if not hasattr(predictor.model, "step_module"):
        raise UserError(f"{args.ckpt}: model {name}'s step has no fixed-size state to export (eeg2arm's key/value "
                        f"cache grows with every frame); export the whole window, or decode with infer.py --stream")
    module = Step(predictor).eval()
    state = module.step.initial_state(2)
    described = describe_input(predictor, shape, bp, step=True)
    with atomic_path(args.out) as tmp:
        export(module, (torch.zeros(2, *shape[:2], 1), *state), tmp, ext, {METADATA: json.dumps(described)})
        checked = None if args.no_check else check_step(tmp, ext, predictor, shape, module)
    report_check(checked, args, "frame by frame")
    lines = [f"wrote {args.out}: {os.path.getsize(args.out) / 1e6:.2f} MB, the per-frame step of model {name} | {threads}",
             f"  inputs  x (batch, {shape[0]}, {shape[1]}, 1) {described['text']}",
             described["frames"] and f"          {described['frames']}",
             f"          state_0..{len(state) - 1}: " + ", ".join(f"(batch, {s.shape[1]}, {s.shape[2]})" for s in state)
             + ", zeros at the start",
             f"  outputs values (batch, {predictor.task.n_classes}) class probabilities of this frame; "
             f"next_state_0..{len(state) - 1}, the state for the next frame",
             f"  preprocessing baked in: {preprocess.describe(predictor.preprocess)}",
             f"  metadata {METADATA!r}: this input's description as JSON"]
    print("\n".join(line for line in lines if line))


def report_check(checked, args, how):
    if checked:
        print(f"checked against PyTorch {how}: {checked}")
    elif not args.no_check:
        print("check skipped: onnxruntime is not installed (pip install onnxruntime)")
