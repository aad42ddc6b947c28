"""run_padded (padded, per-direction runs) against torch's packed-sequence RNNs with the same weights."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.testing import assert_close

from seqnlp.nn import RNNEncoder
from seqnlp.nn.padded_rnn import reverse_padded, run_padded

LENGTHS = torch.tensor([6, 2, 4, 1])
B, T, I, H = len(LENGTHS), 6, 5, 4


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def packed_run(rnn, x, lengths):
    out, h = rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
    return out, h[0] if isinstance(h, tuple) else h


def test_reverse_padded():
    x = torch.arange(B * T).view(B, T)
    r = reverse_padded(x.unsqueeze(-1), LENGTHS).squeeze(-1)
    assert r[1].tolist() == [7, 6, 8, 9, 10, 11]  # first 2 reversed, padding in place
    assert r[3].tolist() == x[3].tolist()
    assert r[0].tolist() == x[0].flip(0).tolist()
    assert torch.equal(reverse_padded(r.unsqueeze(-1), LENGTHS).squeeze(-1), x)  # an involution


@pytest.mark.parametrize("cls", [torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN])
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("layers", [1, 2])
def test_matches_packed_outputs_states_and_gradients(cls, bidirectional, layers):
    rnn = cls(I, H, num_layers=layers, bidirectional=bidirectional, batch_first=True).double()
    x = torch.randn(B, T, I, dtype=torch.double, requires_grad=True)
    mask = (torch.arange(T)[None] < LENGTHS[:, None])[..., None]
    out, h = run_padded(rnn, x, LENGTHS)
    ref_out, ref_h = packed_run(rnn, x, LENGTHS)
    assert out.shape == ref_out.shape and h.shape == ref_h.shape
    assert_close(out * mask, ref_out * mask)
    assert_close(h, ref_h)
    w = torch.randn_like(out) * mask  # a loss that reads real positions only
    grads = torch.autograd.grad((out * w).sum() + h.sum(), [x, *rnn.parameters()])
    ref = torch.autograd.grad((ref_out * w).sum() + ref_h.sum(), [x, *rnn.parameters()])
    for g, r in zip(grads, ref):
        assert_close(g, r)


def test_padding_values_do_not_leak():
    rnn = torch.nn.LSTM(I, H, bidirectional=True, batch_first=True)
    x = torch.randn(B, T, I)
    mask = (torch.arange(T)[None] < LENGTHS[:, None])[..., None]
    noisy = torch.where(mask, x, torch.randn_like(x) * 100)
    a, ha = run_padded(rnn, x, LENGTHS)
    b, hb = run_padded(rnn, noisy, LENGTHS)
    assert_close(a * mask, b * mask)
    assert_close(ha, hb)


def test_rnn_encoder_padded_equals_packed():
    enc = RNNEncoder(I, H, num_layers=2, bidirectional=True).double().eval()
    x = torch.randn(B, T, I, dtype=torch.double)
    packed = enc(x, LENGTHS)
    enc.packed = False
    padded = enc(x, LENGTHS)
    m = packed.mask[..., None]
    assert_close(padded.outputs * m, packed.outputs * m)
    assert_close(padded.final_h, packed.final_h)
    assert padded.final_c is None and torch.equal(padded.mask, packed.mask)
