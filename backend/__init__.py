"""Trading-ML backend: meta-labelling predictions, exit advice and model lifecycle."""

__version__ = "0.1.0"
