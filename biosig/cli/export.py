"""biosig-export (python -m biosig.export): a checkpoint as one .onnx or .pt2 file with its
preprocessing and output transform baked in. The work: biosig/deploy/export.py.
"""
from biosig.deploy import export
from biosig.errors import ArgumentParser, HelpFormatter, prog


def get_args_parser():
    p = ArgumentParser(prog=prog("biosig.export"), formatter_class=HelpFormatter,
                       description="Export a checkpoint with its preprocessing and output transform baked in.")
    p.add_argument("--ckpt", required=True, help="checkpoint written by train.py --save")
    p.add_argument("--out", required=True, help="model.onnx (needs onnx and onnxscript) or model.pt2 (torch.export)")
    p.add_argument("--step", action="store_true", help="export the per-frame step instead: (x (B, C, F, 1), "
                   "state_0...) -> (class probabilities (B, K), next_state_0...), for models with a fixed-size "
                   "state (tcn); state starts as zeros")
    p.add_argument("--no-check", action="store_true", help="do not compare the written file with PyTorch")
    from biosig.threads import add_threads_flag
    add_threads_flag(p)
    return p


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    from biosig.threads import apply as apply_threads
    threads = apply_threads(args.threads, import_torch=False)
    loaded = export.load(args)
    from biosig.deploy import export_several
    if export_several.several(loaded[2]):          # several inputs or targets: one graph input / output each
        return export_several.run(args, threads, loaded)
    return export.run(args, threads, loaded)


if __name__ == "__main__":
    from biosig.errors import run_cli
    run_cli(main)
