"""`from biosig.inference import load_model_from_checkpoint`, the name the README has always shown:
the code is biosig/deploy/predictor.py."""
from .deploy.predictor import Predictor, load_model_from_checkpoint

__all__ = ["Predictor", "load_model_from_checkpoint"]
