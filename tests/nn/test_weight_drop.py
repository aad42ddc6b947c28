"""Weight-dropped fused RNNs: torch's RNN in eval mode; in training, one dropped W_hh for the whole sequence."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seqnlp.nn.dropout import dropout
from seqnlp.nn.lstm import from_torch
from seqnlp.nn.weight_drop import WeightDropGRU, WeightDropLSTM, WeightDropRNN


@pytest.mark.parametrize("cls,ref", [(WeightDropLSTM, nn.LSTM), (WeightDropGRU, nn.GRU), (WeightDropRNN, nn.RNN)])
def test_eval_mode_is_the_plain_rnn_and_weights_move_both_ways(cls, ref):
    drop = cls(5, 7, 2, batch_first=True, weight_drop=0.5).eval()
    plain = ref(5, 7, 2, batch_first=True).eval()
    plain.load_state_dict(drop.state_dict())
    x = torch.randn(3, 6, 5)
    assert torch.equal(drop(x)[0], plain(x)[0])
    assert set(drop.state_dict()) == set(plain.state_dict())


def test_training_drops_recurrent_weights_once_per_sequence():
    torch.manual_seed(0)
    lstm = WeightDropLSTM(4, 6, 1, batch_first=True, weight_drop=0.5).train()
    x = torch.randn(2, 9, 4)
    torch.manual_seed(1)
    out, _ = lstm(x)
    # the same mask, drawn the same way, applied by hand to a plain LSTM: identical at every step
    torch.manual_seed(1)
    mask_w = dropout(lstm.weight_hh_l0.detach(), 0.5, training=True)
    plain = nn.LSTM(4, 6, 1, batch_first=True)
    plain.load_state_dict({**lstm.state_dict(), "weight_hh_l0": mask_w})
    assert torch.allclose(out, plain(x)[0], atol=1e-6)
    out.sum().backward()
    grad = lstm.weight_hh_l0.grad
    assert grad is not None and bool((grad[mask_w == 0] == 0).all()) and bool((grad != 0).any())
    assert lstm.weight_hh_l0.data.ne(mask_w).any()  # the parameter itself is untouched
    assert from_torch(lstm.eval()).weight_hh_l0.equal(lstm.weight_hh_l0)
