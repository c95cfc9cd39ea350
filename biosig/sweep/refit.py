"""sweep.py --refit-seeds: the last stage of a study. The best point is trained again over
several seeds, on all the training windows (no cross-validation fold held out), and scored on
the test data given after -- (--x-test): mean ± std over the seeds, in OUT/refit.json. The
refit's trials live in OUT/refit/ with the sweep's layout, so the same command resumes them.
"""
import json
import os

import numpy as np

from ..errors import UserError
from ..atomic import write_json
from .processes import Queue, run_trials
from .results import objective, test_score, without, write_results
from .trials import build_trials, continuing_text, load_state

FOLD_FLAGS = ("--folds", "--fold", "--test-fold")


def check(args, parsed_shared):
    """Before anything runs: a refit reports test scores, so the trials need test data."""
    if args.refit_seeds and len(set(args.refit_seeds)) != len(args.refit_seeds):
        raise UserError(f"--refit-seeds {' '.join(map(str, args.refit_seeds))}: a seed is repeated")
    if args.refit_seeds and not parsed_shared.x_test:
        raise UserError("--refit-seeds scores the best point on test data: give --x-test (and --y-test) after --")


def refit(args, out, shared, options, train_parser, prefix, envs, warm):
    """Train best.json's point once per --refit-seeds seed and report its test score. Returns
    (exit status, lines to print)."""
    with open(os.path.join(out, "best.json")) as f:
        best = json.load(f)
    where = os.path.join(out, "refit")
    trials = build_trials([best["params"]], args.refit_seeds, without(shared, FOLD_FLAGS), options, train_parser,
                          where, prefix, args.grid)
    for trial in trials:
        load_state(trial)
    todo = [t for t in trials if t.status in ("pending", "incomplete")]
    print(f"refit {best['point']} over seeds {' '.join(map(str, args.refit_seeds))}: {len(todo)} to run"
          f"{continuing_text(todo)}", flush=True)
    stopped = run_trials(Queue(todo), envs, where, args.timeout, args.grace,
                         lambda t: print(f"refit {t.status} {t.id} ({t.wall_s:.1f}s)", flush=True), warm)
    write_results(where, trials, list(best["params"]), args.metric, args.mode)
    if stopped:
        return 128 + stopped, []
    name = best["metric"]
    tests = [test_score(t, name) for t in trials if t.status == "completed"]
    vals = [objective(t.summary, args.metric) for t in trials if t.status == "completed"]
    tests = [v for v in tests if v is not None]
    result = {"point": best["point"], "params": best["params"], "seeds": args.refit_seeds, "metric": name,
              "n": len(tests), "test": _stats(tests), "validation": _stats([v for v in vals if v is not None]),
              "failed": sum(t.status != "completed" for t in trials),
              "trials": [t.id for t in trials], "note": "trained on the training windows (no fold held out) and "
              "scored once on --x-test, which chose nothing"}
    write_json(os.path.join(out, "refit.json"), result)
    test = result["test"]
    line = (f"refit of {best['point']} over {len(tests)} seed(s): test {name[4:] if name.startswith('val_') else name} "
            + (f"{test['mean']:.4f} ± {test['std']:.4f}" if test["std"] is not None else
               f"{test['mean']:.4f}" if test["mean"] is not None else "-") + f" ({os.path.join(out, 'refit.json')})")
    return (1 if result["failed"] else 0), [line]


def _stats(values):
    return {"mean": float(np.mean(values)) if values else None,
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else None, "values": values}
