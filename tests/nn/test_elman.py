"""The explicit Elman RNN against torch.nn.RNN with the same weights (float64)."""

import pytest
import torch
from torch.testing import assert_close

from seqnlp.nn import ElmanRNN

I, H, O, T, B = 4, 6, 5, 7, 3


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("batch_first", [False, True])
def test_recurrent_part_matches_torch_rnn(nonlinearity, num_layers, batch_first):
    ref = torch.nn.RNN(I, H, num_layers, nonlinearity=nonlinearity, batch_first=batch_first).double()
    elman = ElmanRNN(I, H, O, num_layers, nonlinearity, "log_softmax", batch_first).double()
    missing, unexpected = elman.load_state_dict(ref.state_dict(), strict=False)
    assert sorted(missing) == ["output.bias", "output.weight"] and not unexpected

    x = torch.randn((B, T, I) if batch_first else (T, B, I), dtype=torch.double)
    h0 = torch.randn(num_layers, B, H, dtype=torch.double)
    x_ref, x_ours = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    w_states, w_final = torch.randn(x.shape[:2] + (H,), dtype=torch.double), torch.randn_like(h0)

    ref_states, ref_final = ref(x_ref, h0)
    y, states, final = elman(x_ours, h0)
    assert_close(states, ref_states)
    assert_close(final, ref_final)
    assert y.shape == x.shape[:2] + (O,)
    assert_close(y, torch.log_softmax(elman.output(states), dim=-1))  # y_t = h(c + V s_t)

    ((ref_states * w_states).sum() + (ref_final * w_final).sum()).backward()
    ((states * w_states).sum() + (final * w_final).sum()).backward()
    assert_close(x_ours.grad, x_ref.grad)
    for name, p in ref.named_parameters():
        assert_close(getattr(elman, name).grad, p.grad, msg=name)


def test_recurrent_state_dict_loads_into_torch_rnn_strict():
    elman = ElmanRNN(I, H, O, num_layers=2, nonlinearity="relu")
    ref = torch.nn.RNN(I, H, 2, nonlinearity="relu")
    ref.load_state_dict(elman.recurrent_state_dict(), strict=True)
    x = torch.randn(T, B, I)
    assert_close(elman(x)[1], ref(x)[0])


def test_first_step_is_the_lecture_formula():
    elman = ElmanRNN(I, H, O, output_activation="softmax").double()
    x = torch.randn(1, B, I, dtype=torch.double)
    s0 = torch.randn(1, B, H, dtype=torch.double)
    y, states, s_n = elman(x, s0)
    U, W = elman.weight_ih_l0, elman.weight_hh_l0
    b = elman.bias_ih_l0 + elman.bias_hh_l0
    s1 = torch.tanh(b + s0[0] @ W.T + x[0] @ U.T)  # s_1 = f(b + W s_0 + U x_1)
    assert_close(states[0], s1)
    assert_close(s_n[0], s1)
    o1 = elman.output.bias + s1 @ elman.output.weight.T  # o_1 = c + V s_1
    assert_close(y[0], torch.softmax(o1, dim=-1))
    assert_close(y.sum(-1), torch.ones(1, B, dtype=torch.double))


@pytest.mark.parametrize("activation", ["identity", "sigmoid"])
def test_output_activations(activation):
    elman = ElmanRNN(I, H, O, output_activation=activation)
    y, states, _ = elman(torch.randn(T, B, I))
    o = elman.output(states)
    assert_close(y, o if activation == "identity" else torch.sigmoid(o))


def test_without_output_layer_y_is_the_states():
    elman = ElmanRNN(I, H)
    assert elman.output is None
    assert all(not n.startswith("output") for n in elman.state_dict())
    y, states, s_n = elman(torch.randn(T, B, I))
    assert y is states and states.shape == (T, B, H) and s_n.shape == (1, B, H)
    assert_close(states[-1], s_n[0])


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        ElmanRNN(I, H, nonlinearity="sigmoid")
    with pytest.raises(ValueError):
        ElmanRNN(I, H, O, output_activation="gelu")
    with pytest.raises(ValueError):
        ElmanRNN(I, H, output_activation="softmax")  # no output layer to apply it to
    with pytest.raises(ValueError):
        ElmanRNN(I, H)(torch.randn(T, B, I), torch.zeros(2, B, H))
