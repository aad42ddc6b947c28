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


def test_mostly_padded_inference_batches_run_packed_with_the_same_outputs(monkeypatch):
    """RNNEncoder(packed=False) at inference: a batch that is a third or more padding runs packed (cheaper on mixed
    lengths), a length-sorted one padded; outputs (0 at padding) and final states equal either way, and training
    always runs padded."""
    import seqnlp.nn.encoders as enc_mod

    enc = RNNEncoder(6, 5, num_layers=2, packed=False).eval()
    calls = []
    real_pack = enc_mod.pack_padded_sequence
    monkeypatch.setattr(enc_mod, "pack_padded_sequence", lambda *a, **k: calls.append(1) or real_pack(*a, **k))
    mixed, even = torch.tensor([9, 2, 3, 1]), torch.tensor([9, 8, 9, 7])
    for lengths, packs in ((mixed, True), (even, False)):
        x = torch.randn(4, 9, 6)
        calls.clear()
        with torch.no_grad():
            out = enc(x, lengths)
            enc.PACK_BELOW = 0.0  # force the padded run
            ref = enc(x, lengths)
            del enc.PACK_BELOW
        assert bool(calls) == packs
        assert_close(out.outputs, ref.outputs)
        assert_close(out.final_h, ref.final_h)
        assert out.final_c is None and ref.final_c is None
        pad = torch.arange(9)[None, :] >= lengths[:, None]
        assert out.outputs[pad].abs().max() == 0 and ref.outputs[pad].abs().max() == 0
    enc.train()
    calls.clear()
    enc(torch.randn(4, 9, 6), mixed).outputs.sum().backward()
    assert not calls  # training: the padded run (its backward is the fast one on CPU)
