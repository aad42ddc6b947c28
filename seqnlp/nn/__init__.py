"""Recurrent building blocks.

The lecture's models, written out for teaching and inspection: :class:`LSTM` / :class:`LSTMCell`
(explicit gates, ``torch.nn.LSTM``-compatible weights), :class:`ElmanRNN` and the fixed-window
:class:`WindowEncoder`. The parts real training runs on: :class:`RNNEncoder` (fused, packed),
:class:`Embeddings`, attention, :class:`LSTMDecoder`, :class:`LinearChainCRF`, the character-level word
features :class:`CharEncoder`, and :func:`run_padded` (an RNN over a padded batch, as if packed).
"""

from seqnlp.nn.attention import Attention, BahdanauAttention, LuongAttention, build_attention
from seqnlp.nn.char_encoder import CharEncoder
from seqnlp.nn.crf import LinearChainCRF
from seqnlp.nn.decoders import DecoderState, LSTMDecoder
from seqnlp.nn.elman import ElmanRNN
from seqnlp.nn.embeddings import Embeddings
from seqnlp.nn.encoders import EncoderOutput, RNNEncoder
from seqnlp.nn.lstm import LSTM, LSTMCell
from seqnlp.nn.padded_rnn import run_padded
from seqnlp.nn.window import WindowEncoder

__all__ = [
    "LSTM",
    "LSTMCell",
    "ElmanRNN",
    "WindowEncoder",
    "RNNEncoder",
    "EncoderOutput",
    "Embeddings",
    "Attention",
    "BahdanauAttention",
    "LuongAttention",
    "build_attention",
    "LSTMDecoder",
    "DecoderState",
    "LinearChainCRF",
    "CharEncoder",
    "run_padded",
]
