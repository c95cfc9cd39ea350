"""Train a model on biosignal windows X (N, C, F, T) with targets y (N,).

    python train.py --x X.npy --y y.npy --save ckpt.pt
    torchrun --nproc_per_node=2 train.py --x X.npy --y y.npy --save ckpt.pt   # DDP
    python train.py --resume runs/<run>/last.pt                               # continue

The options come from biosig/training/options.py (with each registered model's and task's own) and
are resolved once by biosig/training/resolve.py; biosig.train(...) is the same run from Python.
See docs/training.md for every option, docs/rundir.md for the run directory and the checkpoint format.
"""
import os
import sys

from biosig.errors import Interrupted, stop_on_sigterm


def get_args_parser():
    from biosig.training.options import train_parser
    return train_parser()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "RANK" not in os.environ:
        # kill, scancel, a preempted job: stop like Ctrl-C, with the resume command (exit 143).
        # Not under torchrun, whose SIGTERM must end a rank at once even inside a collective.
        stop_on_sigterm()
    from biosig.threads import check_environment, quiet_waiting
    quiet_waiting()                     # before torch loads its OpenMP runtime (biosig/threads.py)
    check_environment(argv)             # a bad OMP_NUM_THREADS: our one line, before libgomp's own
    try:
        from biosig.training.options import explicit_options
        parser = get_args_parser()
        args = parser.parse_args(argv)
        if args.model == "help":
            from biosig.training.recipe import describe_models
            print(describe_models())
            return
        from biosig.training.run import run
    except KeyboardInterrupt as e:
        stopped, code = Interrupted.stopped_by(e)
        raise Interrupted(f"{stopped} before training started; nothing was written", code=code) from None
    run(args, explicit_options(parser, argv))


if __name__ == "__main__":
    from biosig.errors import run_cli
    run_cli(main)
