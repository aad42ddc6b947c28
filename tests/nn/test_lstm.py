"""The explicit-gates LSTM against torch.nn.LSTM with the same weights (float64)."""

import math

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.testing import assert_close

from seqnlp.nn import LSTM, LSTMCell
from seqnlp.nn.lstm import from_torch

I, H, T, B = 5, 7, 6, 3


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def make_pair(**kwargs) -> tuple[torch.nn.LSTM, LSTM]:
    ref = torch.nn.LSTM(I, H, **kwargs).double()
    return ref, from_torch(ref)


def weighted_loss(output, h_n, c_n, weights):
    """A loss that sends a different gradient to every element of every result."""
    w_out, w_h, w_c = weights
    return (output * w_out).sum() + (h_n * w_h).sum() + (c_n * w_c).sum()


def run_and_grads(module, x, hx, weights, **fwd_kwargs):
    x = x.clone().requires_grad_(True)
    hx = None if hx is None else tuple(s.clone().requires_grad_(True) for s in hx)
    module.zero_grad()
    output, (h_n, c_n) = module(x, hx, **fwd_kwargs)
    weighted_loss(output, h_n, c_n, weights).backward()
    grads = {name: p.grad.clone() for name, p in module.named_parameters()}
    grads["input"] = x.grad.clone()
    if hx is not None:
        grads["h0"], grads["c0"] = hx[0].grad.clone(), hx[1].grad.clone()
    return output.detach(), h_n.detach(), c_n.detach(), grads


CONFIGS = [
    dict(num_layers=1),
    dict(num_layers=2),
    dict(num_layers=1, bidirectional=True),
    dict(num_layers=2, bidirectional=True),
    dict(num_layers=2, batch_first=True),
    dict(num_layers=2, bidirectional=True, batch_first=True),
    dict(num_layers=2, bias=False),
]


@pytest.mark.parametrize("config", CONFIGS, ids=str)
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
def test_matches_torch_outputs_and_gradients(config, with_state):
    ref, ours = make_pair(**config)
    d = 2 if config.get("bidirectional") else 1
    x = torch.randn((B, T, I) if config.get("batch_first") else (T, B, I), dtype=torch.double)
    hx = None
    if with_state:
        hx = tuple(torch.randn(config["num_layers"] * d, B, H, dtype=torch.double) for _ in range(2))
    out_shape = x.shape[:2] + (d * H,)
    state_shape = (config["num_layers"] * d, B, H)
    weights = tuple(torch.randn(s, dtype=torch.double) for s in (out_shape, state_shape, state_shape))

    expected = run_and_grads(ref, x, hx, weights)
    actual = run_and_grads(ours, x, hx, weights)
    assert actual[0].shape == out_shape and actual[1].shape == state_shape
    for a, e in zip(actual[:3], expected[:3]):
        assert_close(a, e)
    assert actual[3].keys() == expected[3].keys()
    for name in expected[3]:
        assert_close(actual[3][name], expected[3][name], msg=name)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_lengths_match_packed_sequence(bidirectional, batch_first):
    ref, ours = make_pair(num_layers=2, bidirectional=bidirectional, batch_first=batch_first)
    d = 2 if bidirectional else 1
    lengths = torch.tensor([4, T, 1])  # unsorted, one full-length, one of a single step
    x = torch.randn((B, T, I) if batch_first else (T, B, I), dtype=torch.double)
    hx = tuple(torch.randn(2 * d, B, H, dtype=torch.double) for _ in range(2))
    out_shape = x.shape[:2] + (d * H,)
    weights = tuple(torch.randn(s, dtype=torch.double) for s in (out_shape, (2 * d, B, H), (2 * d, B, H)))

    class Packed(torch.nn.Module):  # torch.nn.LSTM on a packed sequence, padded back to T steps
        def __init__(self):
            super().__init__()
            self.lstm = ref

        def forward(self, x, hx):
            packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
            out, state = self.lstm(packed, hx)
            return pad_packed_sequence(out, batch_first=batch_first, total_length=T)[0], state

    expected = run_and_grads(Packed(), x, hx, weights)
    actual = run_and_grads(ours, x, hx, weights, lengths=lengths)
    for a, e in zip(actual[:3], expected[:3]):
        assert_close(a, e)
    for name, grad in expected[3].items():
        assert_close(actual[3][name.removeprefix("lstm.")], grad, msg=name)


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_state_dict_round_trip_strict(config):
    ref = torch.nn.LSTM(I, H, **config)
    ours = LSTM(I, H, **config)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    for (_, p), (_, q) in zip(ours.named_parameters(), ref.named_parameters()):
        assert p.shape == q.shape
    ours.load_state_dict(ref.state_dict(), strict=True)
    for key, value in ref.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value)
    fresh_ref = torch.nn.LSTM(I, H, **config)
    fresh_ref.load_state_dict(LSTM(I, H, **config).state_dict(), strict=True)


def test_init_is_uniform_within_torch_bound():
    ours = LSTM(I, H, num_layers=2, bidirectional=True)
    bound = 1 / math.sqrt(H)
    for p in ours.parameters():
        assert p.abs().max() <= bound
        assert p.std() > bound / 4  # actually spread over the interval, not zeros


def test_eval_mode_dropout_and_unbatched_input_match_torch():
    ref, ours = make_pair(num_layers=2, dropout=0.5, bidirectional=True)
    ref.eval()
    ours.eval()
    x = torch.randn(T, I, dtype=torch.double)  # unbatched
    hx = tuple(torch.randn(4, H, dtype=torch.double) for _ in range(2))
    out, (h, c) = ours(x, hx)
    ref_out, (ref_h, ref_c) = ref(x, hx)
    assert_close(out, ref_out)
    assert_close(h, ref_h)
    assert_close(c, ref_c)


def test_dropout_between_layers_in_training():
    ours = LSTM(I, H, num_layers=2, dropout=0.5).double()
    x = torch.randn(T, B, I, dtype=torch.double)
    a, _ = ours(x)
    b, _ = ours(x)
    assert not torch.allclose(a, b)
    ours.eval()
    assert_close(ours(x)[0], ours(x)[0])


@pytest.mark.parametrize("batch_first", [False, True])
def test_activations_shapes_and_consistency(batch_first):
    ours = LSTM(I, H, num_layers=2, bidirectional=True, batch_first=batch_first).double()
    x = torch.randn((B, T, I) if batch_first else (T, B, I), dtype=torch.double)
    output, (h_n, _), acts = ours(x, return_activations=True)
    assert len(acts) == 4  # layer-major, then direction, as in h_n
    time_dim = 1 if batch_first else 0
    for k, a in enumerate(acts):
        assert set(a) == {"forget", "input", "candidate", "output", "cell", "hidden"}
        for value in a.values():
            assert value.shape == output.shape[:2] + (H,)
        assert_close(a["hidden"], a["output"] * torch.tanh(a["cell"]))
        for gate in ("forget", "input", "output"):
            assert ((a[gate] > 0) & (a[gate] < 1)).all()
        # C_t = f_t * C_{t-1} + i_t * C̃_t along the direction's own time order
        cell = a["cell"].movedim(time_dim, 0)
        f, i, g = (a[n].movedim(time_dim, 0) for n in ("forget", "input", "candidate"))
        if k % 2 == 0:
            assert_close(cell[1:], f[1:] * cell[:-1] + i[1:] * g[1:])
        else:  # reverse direction: step t follows step t + 1
            assert_close(cell[:-1], f[:-1] * cell[1:] + i[:-1] * g[:-1])
    last_fwd, last_bwd = acts[2]["hidden"], acts[3]["hidden"]
    assert_close(torch.cat([last_fwd, last_bwd], dim=-1), output)
    first = 0
    last = -1
    assert_close(last_fwd.select(time_dim, last), h_n[2])
    assert_close(last_bwd.select(time_dim, first), h_n[3])


def test_activations_with_lengths_are_zero_on_padding():
    ours = LSTM(I, H, bidirectional=True).double()
    lengths = torch.tensor([T, 2, 3])
    x = torch.randn(T, B, I, dtype=torch.double)
    output, (h_n, _), acts = ours(x, return_activations=True, lengths=lengths)
    pad = torch.arange(T).unsqueeze(1) >= lengths  # (T, B)
    for a in acts:
        for value in a.values():
            assert (value[pad] == 0).all()
        assert_close(a["hidden"], a["output"] * torch.tanh(a["cell"]))
    assert_close(acts[0]["hidden"][lengths - 1, torch.arange(B)], h_n[0])
    assert_close(acts[1]["hidden"][0], h_n[1])


def test_cell_matches_torch_lstm_cell_and_lecture_weights():
    ref = torch.nn.LSTMCell(I, H).double()
    cell = LSTMCell(I, H).double()
    cell.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(B, I, dtype=torch.double)
    h0, c0 = torch.randn(B, H, dtype=torch.double), torch.randn(B, H, dtype=torch.double)
    h, c, gates = cell(x, (h0, c0), return_gates=True)
    ref_h, ref_c = ref(x, (h0, c0))
    assert_close(h, ref_h)
    assert_close(c, ref_c)
    # the lecture's form: gate = σ(W·[h_{t-1}, x_t] + b)
    hx_cat = torch.cat([h0, x], dim=1)
    weights = cell.lecture_weights()
    for name, key, fn in [
        ("f", "f", torch.sigmoid),
        ("i", "i", torch.sigmoid),
        ("g", "C", torch.tanh),
        ("o", "o", torch.sigmoid),
    ]:
        w, b = weights[key]
        assert w.shape == (H, H + I) and b.shape == (H,)
        assert_close(gates[name], fn(hx_cat @ w.T + b))
    assert_close(c, gates["f"] * c0 + gates["i"] * gates["g"])
    assert_close(h, gates["o"] * torch.tanh(c))


def test_bad_shapes_raise():
    ours = LSTM(I, H, num_layers=2)
    with pytest.raises(ValueError):
        ours(torch.randn(T, B, I + 1))
    with pytest.raises(ValueError):
        ours(torch.randn(T, B, I), (torch.zeros(1, B, H), torch.zeros(1, B, H)))
    with pytest.raises(ValueError):
        ours(torch.randn(T, B, I), lengths=torch.tensor([T + 1, 1, 1]))
