"""The fixed-window encoder against a naive per-position loop."""

import pytest
import torch
from torch.testing import assert_close

from seqnlp.nn import WindowEncoder

I, H, T, B = 3, 5, 7, 2


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def naive_windows(x, left, right, causal, mask=None):
    """Window of every (b, n) built element by element: (B, T, window_size * I)."""
    batch, steps, size = x.shape
    offsets = range(-left, 0) if causal else range(-left, right + 1)
    out = torch.zeros(batch, steps, len(offsets) * size, dtype=x.dtype)
    for b in range(batch):
        for n in range(steps):
            for j, off in enumerate(offsets):
                m = n + off
                if 0 <= m < steps and (mask is None or mask[b, m]):
                    out[b, n, j * size : (j + 1) * size] = x[b, m]
    return out


@pytest.mark.parametrize(
    "left,right,causal",
    [(2, 2, False), (1, 0, False), (0, 3, False), (3, 0, True), (1, 0, True), (9, 9, False)],
)
@pytest.mark.parametrize("num_layers", [1, 2])
def test_matches_naive_reference(left, right, causal, num_layers):
    enc = WindowEncoder(I, left, right, H, num_layers=num_layers, causal=causal).double()
    x = torch.randn(B, T, I, dtype=torch.double)
    expected = naive_windows(x, left, right, causal)
    assert_close(enc.windows(x), expected)
    out = enc(x)
    assert out.shape == (B, T, H) and enc.output_size == H
    assert_close(out, enc.mlp(expected))


def test_causal_window_never_sees_current_or_future():
    enc = WindowEncoder(I, window_left=3, hidden_size=H, causal=True).double()
    x = torch.randn(B, T, I, dtype=torch.double)
    base = enc(x)
    for n in range(T):
        perturbed = x.clone()
        perturbed[:, n:] = torch.randn(B, T - n, I, dtype=torch.double) * 10
        out = enc(perturbed)
        assert_close(out[:, : n + 1], base[:, : n + 1])  # positions <= n see only x_{<n}
        if n + 1 < T:
            assert not torch.allclose(out[:, n + 1], base[:, n + 1])  # ...and position n + 1 sees x_n
    assert_close(enc(x)[:, 0], enc.mlp(torch.zeros(B, 3 * I, dtype=torch.double)))


def test_plus_minus_window_sees_both_sides_only_within_l():
    l = 2
    enc = WindowEncoder(I, l, l, H).double()
    x = torch.randn(B, T, I, dtype=torch.double)
    base = enc(x)
    n = 3
    perturbed = x.clone()
    perturbed[:, n] += 1.0
    changed = ~torch.isclose(enc(perturbed), base).all(-1).all(0)  # (T,) positions that moved
    assert changed.tolist() == [abs(m - n) <= l for m in range(T)]


def test_mask_respected():
    enc = WindowEncoder(I, 2, 1, H, activation="relu").double()
    x = torch.randn(B, T, I, dtype=torch.double)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[0, 5:] = False
    mask[1, 2:] = False
    out = enc(x, mask)
    assert (out[~mask] == 0).all()
    assert_close(out, enc.mlp(naive_windows(x, 2, 1, False, mask)).masked_fill(~mask.unsqueeze(-1), 0.0))
    garbage = x.clone()
    garbage[~mask] = 100.0
    assert_close(enc(garbage, mask), out)


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        WindowEncoder(I, 2, 1, H, causal=True)
    with pytest.raises(ValueError):
        WindowEncoder(I, 0, 0, H, causal=True)
    with pytest.raises(ValueError):
        WindowEncoder(I, 1, 1, H, activation="softsign")
    with pytest.raises(ValueError):
        WindowEncoder(I, 1, 1, H)(torch.randn(B, T, I), torch.ones(B, T + 1, dtype=torch.bool))
