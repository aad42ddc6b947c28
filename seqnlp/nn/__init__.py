"""Recurrent building blocks: the lecture's Elman RNN and LSTM, and the fixed-window encoder."""

from seqnlp.nn.elman import ElmanRNN
from seqnlp.nn.lstm import LSTM, LSTMCell
from seqnlp.nn.window import WindowEncoder

__all__ = ["LSTM", "LSTMCell", "ElmanRNN", "WindowEncoder"]
