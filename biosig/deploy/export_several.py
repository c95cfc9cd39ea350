"""Export a checkpoint of several inputs or several targets (biosig.export: biosig/cli/export.py sends
such a checkpoint here, every other one to export.py, whose writer and runners this uses).

    python -m biosig.export --ckpt fusion.pt --out model.onnx     # train.py --x ppg=... --x acc=...
    python -m biosig.export --ckpt multi.pt --out model.pt2       # train.py --y hr=... --y act=...

Several inputs: the file takes one input per input of the checkpoint, named by it ("ppg", "acc"), in
the checkpoint's order, each float32 (B, C_m, F_m, T_m) windows as `infer.py --x NAME=PATH` takes
them (B dynamic and shared, the rest static: the training shape), each with its own preprocessing
baked in. Every input is required: the file has no absent sensor (a model trained with
--modality-drop predicts without one through infer.py, which leaves the input out). Metadata
"biosig.inputs" describes each input (JSON {name: {shape, kind, fs, channels, units, text}}).
Several targets: one output per target, named by it ("hr", "act"), each that target's values, what
`infer.py --out preds.npy` writes as preds.hr.npy, preds.act.npy; metadata "biosig.outputs" (JSON
{name: {shape, task}}). One target keeps its output "values"; one input keeps its input "x" and its
metadata "biosig.input" (export.py's, band-power frames made inside included).
Use:  onnxruntime.InferenceSession("model.onnx").run(None, {"ppg": P, "acc": A})   # [hr, act]
      torch.export.load("model.pt2").module()(torch.from_numpy(P), torch.from_numpy(A))
      # -> {"hr": ..., "act": ...} (several targets), the values tensor (one)
Every output of the written file is checked against Predictor.predict on seeded random batches of
3 and 1 windows (the tolerance of export.py). --step (a per-frame step) is refused: its state and
frame clocks are one input's and one target's.
"""
import json
import os
from types import SimpleNamespace

import numpy as np
import torch

from .. import normalize as preprocess
from ..atomic import atomic_path
from ..errors import UserError
from ..signals import bandpower
from .export import METADATA, TOLERANCE, describe_input, export, random_raw, random_windows, report_check, runner
from .modules import Deployed, DeployedSeveral

INPUTS, OUTPUTS = "biosig.inputs", "biosig.outputs"      # the metadata entries (JSON) of several inputs, targets


def several(predictor):
    """True for a checkpoint of several inputs or several targets (what this module exports)."""
    return bool(predictor.inputs) or hasattr(predictor.task, "tasks")


def run(args, threads, loaded):
    """biosig.export of a checkpoint of several inputs or targets: loaded = export.load(args)."""
    ext, ckpt, predictor = loaded
    inputs, targets = predictor.inputs, list(getattr(predictor.task, "tasks", ()))
    if args.step:
        what = f"several inputs ({', '.join(inputs)})" if inputs else f"several targets ({', '.join(targets)})"
        raise UserError(f"{args.ckpt}: --step exports one input's per-frame step for one target, and this "
                        f"checkpoint has {what}; export whole windows (no --step), or decode with infer.py")
    model = predictor.model
    if not hasattr(model, "export_module"):      # a part with an export form of its own that the whole has not
        untraced = sorted({m.config["name"] for m in model.modules() if m is not model and hasattr(m, "export_module")})
        if untraced:
            raise UserError(f"{args.ckpt}: model {model.config['name']}'s {', '.join(untraced)} encoder does not trace "
                            f"(data-dependent indexing) inside it; export a model trained with --encoder tcn or "
                            f"resnet1d, or predict with infer.py")
    bp = None
    if inputs:
        shapes = {n: tuple(s[1:]) for n, s in ckpt["example_input_shape"].items()}
        module = DeployedSeveral.named(predictor, shapes[inputs[0]][-1]).eval()
        described = {n: describe_input(SimpleNamespace(signal=predictor.signal.get(n) or {}), shapes[n], None)
                     for n in inputs}
        metadata = {INPUTS: json.dumps(described)}
    else:
        shape = tuple(ckpt["example_input_shape"][1:])
        made = predictor.signal.get("bandpower")
        bp = bandpower.BandPower.from_config(made) if made and len(made["bands"]) == shape[1] else None
        module = Deployed(predictor, shape[-1], bp).eval()
        described = {"x": describe_input(predictor, shape, bp)}
        shapes = {"x": shape}
        metadata = {METADATA: json.dumps(described["x"])}
    names = list(described)
    example = tuple(torch.zeros(2, *d["shape"][1:]) for d in described.values())
    with torch.no_grad():
        out = module(*example)
    out = out if isinstance(out, dict) else {"values": out}
    outputs = {n: tuple(v.shape[1:]) for n, v in out.items()}
    if targets:
        metadata[OUTPUTS] = json.dumps({n: {"shape": ["batch", *outputs[n]], "task": predictor.task.tasks[n].name}
                                        for n in targets})
    with atomic_path(args.out) as tmp:
        export(module, example, tmp, ext, metadata, inputs=names if inputs else None, outputs=list(outputs))
        checked = None if args.no_check else check(tmp, ext, predictor, shapes, list(outputs), bp)
    report_check(checked, args, f"on 2 random batches, every output ({', '.join(outputs)})")
    print("\n".join(summary(args, ext, ckpt, predictor, described, outputs, threads)))


def summary(args, ext, ckpt, predictor, described, outputs, threads):
    """The lines biosig.export prints about the file it wrote."""
    kind = "ONNX" if ext == ".onnx" else "torch.export program"
    width = max(map(len, [*described, *outputs]))
    lines = [f"wrote {args.out}: {os.path.getsize(args.out) / 1e6:.2f} MB, {kind}; model {ckpt['config']['name']}, "
             f"{predictor.task} | {threads}"]
    for n, d in described.items():
        lines.append(f"  input  {n:<{width}} (batch, {', '.join(map(str, d['shape'][1:]))}) float32 {d['text']}: "
                     f"batch dynamic, the rest static")
        if d["frames"]:
            lines.append(f"  {d['frames']}")
    several_targets = list(outputs) != ["values"]
    for n, shape in outputs.items():
        what = "infer.py --out preds.npy writes" + (f" preds.{n}.npy" if several_targets else "")
        lines.append(f"  output {n:<{width}} (batch{''.join(f', {s}' for s in shape)}) float32, as {what}")
    lines.append(f"  preprocessing baked in: {preprocess.describe(predictor.preprocess)}")
    if predictor.inputs:
        lines.append(f"  every input is required (for an absent sensor use infer.py); metadata {INPUTS!r}: "
                     f"each input's description as JSON")
    else:
        lines.append(f"  metadata {METADATA!r}: this input's description as JSON")
    if several_targets:
        lines.append(f"  metadata {OUTPUTS!r}: each output's shape and task as JSON")
    return lines


def check(path, ext, predictor, shapes, outputs, bp=None):
    """Run the written file on seeded random batches of 3 and 1 windows of `shapes` ({input: (C, F,
    T)}; one input: {"x": ...}, raw samples with `bp`), around each input's standardization when it
    has one -> "max |diff| ... (runtime)" over every output to Predictor.predict ("values", or
    "NAME:values" of each target), or None when onnxruntime is missing. Raises above the tolerance."""
    found = runner(path, ext)
    if found is None:
        return None
    run_file, runtime = found
    gen = np.random.default_rng(0)
    specs = predictor.preprocess.get("inputs") or {"x": predictor.preprocess}
    worst = {name: (0.0, 1.0) for name in outputs}        # output -> (max |diff|, the outputs' scale, at least 1)
    for b in (3, 1):
        if bp is not None:
            xs = [random_raw(predictor, bp, gen, (b, shapes["x"][0], 1, bp.frame + (shapes["x"][-1] - 1) * bp.hop))]
        else:
            xs = [random_windows(specs[n], gen, (b, *shape)) for n, shape in shapes.items()]
        given = dict(zip(shapes, xs)) if predictor.inputs else (xs[0] if bp is None else bp(xs[0]))
        want, got = predictor.predict(given), run_file(xs)
        for name, have in zip(outputs, got):
            expected = want["values" if outputs == ["values"] else f"{name}:values"]
            if have.shape != expected.shape:
                raise AssertionError(f"the exported {ext}: output {name} {have.shape}, PyTorch gives {expected.shape}")
            diff, scale = worst[name]
            diff, scale = max(diff, float(np.abs(have - expected).max())), max(scale, float(np.abs(expected).max()))
            if not diff <= TOLERANCE * scale:      # relative, for outputs above 1
                raise AssertionError(f"the exported {ext}: output {name}: max |diff| {diff:.3g} to PyTorch on a batch "
                                     f"of {b} ({runtime})")
            worst[name] = diff, scale
    return ", ".join(f"{name} max |diff| {diff:.2g}" + (f" ({diff / scale:.1g} of its scale)" if scale > 1 and diff
                                                        else "") for name, (diff, scale) in worst.items()) + f" ({runtime})"
