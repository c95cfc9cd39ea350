"""--init: start a run from the matching weights of another checkpoint (typically the encoder of
a --task pretrain run), and --freeze-encoder: keep those weights fixed, for the first N epochs or
for all of them (linear probing).

A tensor matches when the new model has one of the same name and shape: the pretrained model's
convolutions, Transformer and norms load; its head (sized for the pretraining decoder) does not,
and starts fresh. Without --model the run takes the checkpoint's model and its options, so the
shapes agree. With --standardize, the checkpoint's statistics (from the pretraining pool, often
far more windows than the labelled ones) are kept, so the encoder sees its inputs scaled as it
learnt them.
"""
from .. import checkpoint
from ..errors import UserError


def read_init(flags, explicit):
    """Load --init (weights_only) and, when --model was not given, take its model and the model
    options the command line leaves out. flags: biosig.training.resolve.Flags -> (the checkpoint, flags)."""
    from ..models import MODELS
    ckpt = checkpoint.load(flags.init, what="--init checkpoint")
    config = ckpt["config"]
    if "model" in explicit or config.get("name") not in MODELS:
        return ckpt, flags
    changes = {"model": config["name"]}
    given = {name for word in flags.model_kwargs or [] for name, _ in word}
    extra = []
    for opt in MODELS[config["name"]].options:
        if opt.name not in config or opt.name in given or (opt.flag and opt.key in explicit):
            continue
        if opt.flag:
            changes[opt.key] = config[opt.name]
        else:
            extra.append([opt.name, str(config[opt.name])])
    if extra:
        changes["model_kwargs"] = (flags.model_kwargs or []) + [extra]
    return ckpt, flags.with_(**changes)


def matching(own, theirs):
    """The names of `own`'s tensors that `theirs` holds with the same shape (state dicts)."""
    return [k for k, v in own.items() if k in theirs and tuple(theirs[k].shape) == tuple(v.shape)]


def load_matching(model, ckpt, path):
    """Copy the checkpoint's tensors that match the model's by name and shape.
    -> (loaded names, new names); nothing matching is a one-line error."""
    own, theirs = model.state_dict(), ckpt["model_state"]
    loaded = matching(own, theirs)
    if not loaded:
        raise UserError(f"{path}: --init: none of its tensors fits --model {model.config['name']} (the checkpoint "
                        f"holds a {ckpt['config'].get('name')} model for C={ckpt['config'].get('n_elec')}, "
                        f"F={ckpt['config'].get('n_bands')})")
    model.load_state_dict({**own, **{k: theirs[k] for k in loaded}})
    return loaded, [k for k in own if k not in loaded]


def load_task_state(net, model, ckpt):
    """The checkpoint's task_state tensors that match the task network's own (not the model's)
    by name and shape, loaded. -> (loaded names, new names), {} when net is the model."""
    if net is model:
        return [], []
    own = {k: v for k, v in net.state_dict().items() if not k.startswith("model.")}
    loaded = matching(own, ckpt.get("task_state") or {})
    net.load_state_dict({k: ckpt["task_state"][k] for k in loaded}, strict=False)
    return loaded, [k for k in own if k not in loaded]


def describe(loaded, new, path):
    """'init from P: 24 tensors (stem, transformer, norm); new: head.weight, head.bias'."""
    def parts(names):
        tops = []
        for n in names:
            top = n.split(".")[0]
            if top not in tops:
                tops.append(top)
        return ", ".join(tops)
    shown = ", ".join(new[:6]) + (f", ... ({len(new)} in all)" if len(new) > 6 else "")
    return f"init from {path}: {len(loaded)} tensors loaded ({parts(loaded)}); new: {shown or 'none'}"


def frozen_parameters(model, loaded):
    """The parameters --freeze-encoder holds fixed: those loaded from --init. One line if that
    would leave nothing to train."""
    names = set(loaded)
    frozen = [p for n, p in model.named_parameters() if n in names]
    if len(frozen) == len(list(model.parameters())):
        raise UserError("--freeze-encoder: every parameter of the model came from --init, so nothing would train "
                        "(the checkpoint's head fits this task too); drop --freeze-encoder")
    return frozen


def take_preprocessing(flags, explicit, ckpt):
    """Without --standardize/--normalize on the command line, a run from --init preprocesses as
    the checkpoint's run did (as it takes its model): the encoder sees inputs scaled as it learnt.
    -> flags (biosig.training.resolve.Flags)."""
    spec = ckpt["preprocess"]
    changes = {}
    if "standardize" not in explicit:
        changes["standardize"] = spec.get("mean") is not None
    if "normalize" not in explicit:
        changes["normalize"] = spec.get("normalize") == "sample_zscore"
    return flags.with_(**changes)


def preprocessing(ckpt, normalize, standardize, shape):
    """The --init checkpoint's preprocessing when this run asks for the same kind (--standardize,
    --normalize) on windows of the same (C, F), else None (the run fits its own)."""
    spec = ckpt["preprocess"]
    same = (spec.get("normalize") == ("sample_zscore" if normalize else "none")
            and (spec.get("mean") is not None) == bool(standardize)
            and (spec.get("mean") is None or [len(spec["mean"]), len(spec["mean"][0])] == list(shape)))
    return dict(spec) if same and standardize else None
