"""Using a trained checkpoint: the Predictor that loads one with its preprocessing and signal
contract (predictor.py), infer.py's input made what the checkpoint takes and its --out checked
(inputs.py), frame-by-frame decoding (streamer.py, decode.py for infer.py --stream), Lab
Streaming Layer in and out (lsl.py) and export to ONNX / torch.export (export.py; the traced
modules: modules.py). Nothing here imports training code: infer.py runs without it.

May import: leaves, signals, data, models, tasks.
"""
