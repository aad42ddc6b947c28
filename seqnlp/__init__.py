"""seqnlp: recurrent networks for sequence tasks on text."""

__version__ = "0.1.0"
