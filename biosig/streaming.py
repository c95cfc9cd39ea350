"""`from biosig.streaming import Hysteresis, Streamer`, the names the README has always shown:
the code is biosig/deploy/streamer.py."""
from .deploy.streamer import Hysteresis, Streamer, stream_problem

__all__ = ["Hysteresis", "Streamer", "stream_problem"]
