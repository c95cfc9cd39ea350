"""What every model shares: its `config` recorded from its constructor's arguments (the Model
contract is in biosig/models/__init__.py)."""
import inspect

from torch import nn

from .common import shape_problem


class Model(nn.Module):
    """A model whose `config` (what the checkpoint stores and build_model rebuilds it from) is
    {"name": its registry name, then every argument of its __init__, in the signature's order}.
    A model's __init__ starts with `self.record(locals())` instead of writing that dict by hand."""

    @property
    def n_features(self):
        """D, the width of features(x) (B, D) that the head takes: the head's input size."""
        return self.head.in_features

    def input_problem(self, n_elec, n_bands, n_times):
        """The Model contract's check, for a model that takes its C and F and any T >= 1 (or None)."""
        return shape_problem(self.config, n_elec, n_bands, n_times, 1)

    def record(self, arguments):
        """Sets self.config from `arguments`, __init__'s locals() taken before it binds another
        name (so they are the values it was called with, defaults filled in)."""
        names = list(inspect.signature(type(self).__init__).parameters)[1:]      # without self
        self.config = {"name": self.name, **{n: arguments[n] for n in names}}
