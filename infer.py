"""Predict with a biosig checkpoint; nothing else needed (preprocessing comes from the checkpoint).

    python infer.py --ckpt ckpt.pt --x X_infer.npy            # (B, C, F, T) or one (C, F, T)
    python infer.py --ckpt ckpt.pt --x X.npy --y y.npy --out preds.csv
    python infer.py --ckpt ckpt.pt --stream --x recording.npy --hysteresis 3 --out frames.csv   # (C, F, T_long)
    python infer.py --ckpt ckpt.pt --lsl EEG --lsl-out decisions                                  # live (pylsl)
"""
from biosig.cli.infer import get_args_parser, main     # the code: biosig/cli/infer.py

__all__ = ["get_args_parser", "main"]

if __name__ == "__main__":
    from biosig.errors import run_cli
    run_cli(main)
