"""Model architectures, chosen by name (`--model`). Each takes (B, C, F, T) and returns (B, K).

The Model contract, which the run, the checkpoint and infer.py rely on (and nothing more):
  name                    the registry key, stored in the config
  options                 tuple of declare.Option: its constructor options with types and
                          defaults (become flags or --model-kwargs, are checked, stored)
  Model(n_elec, n_bands, n_outputs, drop, **options)   built from a plain config dict
  fixed_frames            True when the model is built for one window length: the run then
                          passes n_times (the training T) and inference refuses another T
  model.config            that dict, so the checkpoint can rebuild the model (base.Model records
                          it from __init__'s arguments: self.record(locals()), its first line)
  model.input_problem(C, F, T)  why an input shape will not fit, before any forward pass (or None)
  model.forward(x)        (B, C, F, T) -> (B, K)
  model.features(x)       (B, C, F, T) -> (B, D): what the model's last layer takes (an embedding
                          for other models to build on); model.n_features is D, known once the
                          model is built (for a model with fit_data: its value then, too)
  model.head              the last layer as a module, (B, D) -> (B, K): in eval mode
                          head(features(x)) is forward(x), exactly (tcn's within 1e-6: see
                          TCN.forward; tests/test_features.py)
  per_frame               True when the model also has a causal forward_seq(x) -> (B, T', K),
                          and features_seq(x) -> (B, T', D), which head maps frame by frame to it
  recipe                  train.py flags it trains best with, e.g. ("--lr", "1e-3"): they fill in
                          whatever the command line leaves out (chosen by bench/bench_cv.py)
  Model.resolve_options(config, T)  optional: fills in options whose default depends on the
                          training window length T (EEG2Arm's --cnn-time-pool auto); returns config
  model.fit_data(x, seed) optional: fits fixed statistics (buffers, so they are checkpointed)
                          from training windows x (N, C, F, T), once, before the first epoch
  model.head_windows(n)   optional: True when the model fits its head in closed form from the
                          features of n training windows (the run then calls the two below,
                          after fit_data, before the first epoch)
  model.head_features(x)  (B, C, F, T) -> (B, D) what the head takes (no gradient, float32): features(x)
  model.fit_head(features, targets, weights)  fits the head from every training window's
                          features and the task's least_squares targets (N, K), weights (N,) or None
  model.fixed_parameters()  optional: parameters gradient steps must leave as they are (a head
                          fitted in closed form); read after a resume too, so it is state_dict's
  model.stepper(frames)   optional, per-frame models: forward_seq stepped through time (a
                          .step(x) that takes new frames and keeps the past as state; see
                          incremental.py): what infer.py --stream decodes with
  model.receptive_field   optional: input frames an output depends on (a bounded context that
                          covers it needs no restarts)
  model.step_module()     optional: the step as an nn.Module with explicit fixed-size state, for
                          python -m biosig.export --step
  model.export_module()   optional: an equivalent forward that torch.export can trace, when the
                          model's own cannot

Models of several inputs (fusion.py, fusion_early.py, perceiver.py: multi_input = True) take a dict of modalities instead:
  Model(modalities, n_outputs, drop, **options)   modalities {name: {"n_elec", "n_bands", "n_times"}}
  model.forward(x), features(x)   x {name: (B, C_m, F_m, T_m)}; a name left out is a missing sensor
  model.modalities_problem({name: (C, F, T)})   why those inputs will not fit (or None)

Adding a model: one file here with its class, and one line in registry.py's ENCODERS.

May import: leaves.
"""
from .fusion import LateFusion
from .fusion_early import EarlyFusion
from .perceiver import AttentionFusion
from .registry import ENCODERS

# the model of the EEG2Arm guide's command form, and the default: see docs/training.md, "The default recipe"
GUIDE_MODEL = "eeg2arm"
DEFAULT_MODEL = "auto"         # not a model: biosig/training/auto.py picks one by cross-validation
DEFAULT_FUSION = "fusion-late"  # several named inputs without --model (docs/fusion.md)
MODELS = {**ENCODERS, **{m.name: m for m in (EarlyFusion, LateFusion, AttentionFusion)}}


def build_model(config):
    """config: {"name": ..., **constructor kwargs} -> nn.Module."""
    kwargs = {k: v for k, v in config.items() if k != "name"}
    return MODELS[config["name"]](**kwargs)


def input_problem(model, shape):
    """Why windows of `shape` ((B, C, F, T), or {name: (B, C, F, T)} for several inputs) will not
    fit `model`, or None."""
    if isinstance(shape, dict):
        if not getattr(model, "multi_input", False):
            return f"model {model.config['name']} takes one input; got several ({', '.join(shape)})"
        return model.modalities_problem({k: tuple(v[1:]) for k, v in shape.items()})
    if getattr(model, "multi_input", False):
        return f"model {model.config['name']} takes the inputs {', '.join(model.config['modalities'])}, by name"
    return model.input_problem(*shape[1:])
