"""A run's model and its recipe: with_recipe picks the model (--model, the guide's command form,
the default, or the defaults for several inputs or targets) and fills in its recipe's flags;
describe_models is `train.py --model help`."""
import sys

from . import options
from ..errors import UserError
from ..models import DEFAULT_FUSION, DEFAULT_MODEL, GUIDE_MODEL, MODELS
from ..tasks import TASKS, member_tasks

# --model auto: the candidates it compares, by FOLDS-fold cross-validation (biosig/training/auto.py)
CANDIDATES = ("minirocket", "tangent", "eegnet")
FOLDS = 3
RECIPE = ("--val-split", "0")       # auto's own: cross-validation replaces the validation split


def fitting(task_cls):
    """The candidates that can learn the task; fewer than two means no cross-validation."""
    return [m for m in CANDIDATES if task_cls.model_problem(MODELS[m]) is None]


def describe_models():
    """`train.py --model help`: every registered model, what it is, its recipe, options and defaults."""
    lines = [f"auto: the better of {', '.join(CANDIDATES)} by "
             f"{FOLDS}-fold cross-validation on the training windows, then trained on all of them (biosig/training/auto.py)"
             f"{' [the default]' if DEFAULT_MODEL == 'auto' else ''}"]
    for name, cls in sorted(MODELS.items()):
        doc = (cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
        tag = " [the default]" if name == DEFAULT_MODEL else " [the guide's command form]" if name == GUIDE_MODEL else ""
        lines.append(f"{name}: {doc[0] if doc else ''}{tag}")
        recipe = cls.recipe_for(None) if hasattr(cls, "recipe_for") else cls.recipe     # (a fusion model: its encoder's)
        lines.append(f"  recipe: {' '.join(recipe) or 'train.py defaults'}")
        for opt in cls.options:
            how = f"{opt.flag} or " if opt.flag else ""
            lines.append(f"  {how}--model-kwargs {opt.name}=...  default {opt.default}: {opt.help}")
    lines.append("every model: --drop (dropout). A recipe fills in the options not given on the command line.")
    return "\n".join(lines)



def with_recipe(flags, explicit):
    """A new run's model and recipe. No --model: the guide's model when the command has the
    guide's form (--elec, --bands or one of that model's own flags), else the default model.
    Then the model's recipe (Model.recipe, train.py flags) sets every option the command line
    did not give. flags: biosig.training.resolve.Flags -> (flags with the model and its recipe,
    a few words on why this model, for the log)."""
    why, model = "--model", flags.model
    several = member_tasks(flags.task, flags.y, flags.loss_weight, TASKS)
    if model is None and isinstance(flags.x, dict):
        model, why = DEFAULT_FUSION, (f"the default for several inputs ({', '.join(flags.x)}): late fusion of "
                                      f"MiniRocket embeddings, its ridge head solved in closed form")
    elif model is None and several:
        kinds = [TASKS[t] for t in several.values()]
        model = next(m for m in ("minirocket", "tcn") if not any(k.model_problem(MODELS[m]) for k in kinds))
        why = f"the default for several targets ({', '.join(several)}): one {model} for them all"
    if model == "auto" and (isinstance(flags.x, dict) or several):
        raise UserError("--model auto chooses among models of one input and one target; give --model NAME "
                        "(or leave it out: several inputs train fusion-late, several targets minirocket)")
    if model is None:
        guide = [f"--{k}" for k in ("elec", "bands") if k in explicit]
        guide += [o.flag for o in MODELS[GUIDE_MODEL].options if o.flag and o.key in explicit]
        model = GUIDE_MODEL if guide else DEFAULT_MODEL
        why = f"the guide's command form ({guide[0]})" if guide else "the default"
    if model == "auto":
        if flags.model_kwargs:
            raise UserError("--model-kwargs needs a --model NAME: --model auto tries several models "
                            f"({', '.join(CANDIDATES)})")
        # auto's own recipe goes with its cross-validation; a task with one candidate has none
        recipe = RECIPE if len(fitting(TASKS[flags.task])) > 1 else ()
    else:
        cls = MODELS[model]
        recipe = cls.recipe_for(flags) if hasattr(cls, "recipe_for") else cls.recipe
    changes = {"model": model}
    if recipe:
        parser = options.train_parser()
        values = vars(parser.parse_args(list(recipe)))
        for key in options.explicit_options(parser, list(recipe)):
            if key not in explicit:
                changes[key] = values[key]
    return flags.with_(**changes), why
