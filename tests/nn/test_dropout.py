import pytest
import torch
import torch.nn.functional as F

from seqnlp.nn.dropout import Dropout, dropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
def test_drop_rate_and_scale_match_p(p):
    torch.manual_seed(0)
    y = dropout(torch.ones(400_000), p)
    dropped = (y == 0).float().mean().item()
    # binomial standard deviation at n=400k is < 0.0008; 5 sigma
    assert abs(dropped - p) < 0.004
    kept = y[y != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - p)), rtol=1e-4)
    assert abs(y.mean().item() - 1.0) < 0.01  # unbiased in expectation


def test_every_lane_of_a_draw_is_uniform():
    """Each 64-bit draw feeds four elements; none of the four may be biased (e.g. by a constant sign bit)."""
    torch.manual_seed(1)
    m = keep_mask((100_000, 4), 0.5)
    rates = (m == 0).float().mean(0)
    assert torch.all((rates - 0.5).abs() < 0.01), rates


def test_gradient_is_the_mask_and_eval_is_identity():
    torch.manual_seed(2)
    x = torch.randn(64, 33, requires_grad=True)
    y = dropout(x, 0.3)
    y.sum().backward()
    mask = (y / x).detach()
    assert torch.allclose(x.grad, mask, atol=1e-5)
    layer = Dropout(0.3).eval()
    assert layer(x) is x
    assert dropout(x, 0.0) is x


def test_seeded_draws_repeat_and_bfloat16_keeps_dtype():
    x = torch.randn(10, 7, dtype=torch.bfloat16)
    torch.manual_seed(3)
    a = dropout(x, 0.4)
    torch.manual_seed(3)
    b = dropout(x, 0.4)
    assert a.dtype == torch.bfloat16 and torch.equal(a, b)


def test_edge_probabilities_fall_back_to_torch():
    x = torch.randn(5, 5)
    assert torch.equal(dropout(x, 1.0), F.dropout(x, 1.0, True))
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.5)
    with pytest.raises(ValueError, match="dropout probability"):
        dropout(x, -0.1)


def test_state_dict_matches_torch_dropout():
    assert Dropout(0.2).state_dict() == torch.nn.Dropout(0.2).state_dict() == {}
