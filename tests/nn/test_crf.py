"""LinearChainCRF against brute-force enumeration of every tag path."""

import itertools

import pytest
import torch
from torch.func import functional_call

from seqnlp.nn.crf import LinearChainCRF

K = 3
LENGTHS = [4, 1, 3, 2]  # variable lengths in one batch, T = 4


@pytest.fixture
def setup():
    torch.manual_seed(0)
    crf = LinearChainCRF(K).double()
    with torch.no_grad():  # larger than the default init so that paths differ clearly
        for p in crf.parameters():
            p.normal_()
    batch, seq_len = len(LENGTHS), max(LENGTHS)
    emissions = torch.randn(batch, seq_len, K, dtype=torch.float64)
    lengths = torch.tensor(LENGTHS)
    mask = torch.arange(seq_len) < lengths.unsqueeze(1)
    tags = torch.randint(0, K, (batch, seq_len)).masked_fill(~mask, -100)
    return crf, emissions, tags, mask


def path_score(crf, em, path):
    """Score of one tag path (a tuple) for the emissions em of shape (n, K)."""
    s = crf.start_transitions[path[0]] + em[0, path[0]]
    for t in range(1, len(path)):
        s = s + crf.transitions[path[t - 1], path[t]] + em[t, path[t]]
    return s + crf.end_transitions[path[-1]]


def all_paths(crf, em, n):
    paths = list(itertools.product(range(K), repeat=n))
    return paths, torch.stack([path_score(crf, em[:n], p) for p in paths])


def test_log_partition_matches_enumeration(setup):
    crf, emissions, _, mask = setup
    log_z = crf.log_partition(emissions, mask)
    assert log_z.shape == (len(LENGTHS),)
    for b, n in enumerate(LENGTHS):
        _, scores = all_paths(crf, emissions[b], n)
        torch.testing.assert_close(log_z[b], torch.logsumexp(scores, 0))


def test_log_likelihood_matches_enumeration(setup):
    crf, emissions, tags, mask = setup
    ll = crf.log_likelihood(emissions, tags, mask)
    for b, n in enumerate(LENGTHS):
        _, scores = all_paths(crf, emissions[b], n)
        gold = path_score(crf, emissions[b], tuple(tags[b, :n].tolist()))
        torch.testing.assert_close(ll[b], gold - torch.logsumexp(scores, 0))
    torch.testing.assert_close(crf.neg_log_likelihood(emissions, tags, mask), -ll.sum())
    torch.testing.assert_close(crf(emissions, tags, mask), ll)


def test_viterbi_matches_enumeration(setup):
    crf, emissions, _, mask = setup
    best, scores = crf.decode(emissions, mask, return_scores=True)
    assert best.shape == mask.shape and best.dtype == torch.long
    assert (best[~mask] == 0).all()
    for b, n in enumerate(LENGTHS):
        paths, all_scores = all_paths(crf, emissions[b], n)
        i = int(all_scores.argmax())
        assert tuple(best[b, :n].tolist()) == paths[i]
        torch.testing.assert_close(scores[b], all_scores[i])
    assert torch.equal(crf.decode(emissions, mask), best)


def test_batch_equals_each_sequence_alone(setup):
    crf, emissions, tags, mask = setup
    ll = crf.log_likelihood(emissions, tags, mask)
    log_z = crf.log_partition(emissions, mask)
    best = crf.decode(emissions, mask)
    for b, n in enumerate(LENGTHS):
        em, tg = emissions[b : b + 1, :n], tags[b : b + 1, :n]
        torch.testing.assert_close(crf.log_likelihood(em, tg)[0], ll[b])
        torch.testing.assert_close(crf.log_partition(em)[0], log_z[b])
        assert torch.equal(crf.decode(em)[0], best[b, :n])


def test_probabilities_sum_to_one(setup):
    crf, emissions, _, mask = setup
    n = LENGTHS[0]
    paths = torch.tensor(list(itertools.product(range(K), repeat=n)))
    em = emissions[:1, :n].expand(len(paths), n, K)
    total = crf.log_likelihood(em, paths).exp().sum()
    torch.testing.assert_close(total, torch.tensor(1.0, dtype=torch.float64))


def test_gradcheck(setup):
    crf, emissions, tags, mask = setup
    emissions = emissions[:2, :3].clone().requires_grad_()
    tags, mask = tags[:2, :3], mask[:2, :3]
    names = [name for name, _ in crf.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in crf.parameters())

    def fn(em, *ps):
        return functional_call(crf, dict(zip(names, ps)), (em, tags, mask))

    assert torch.autograd.gradcheck(fn, (emissions, *params))


def test_mask_validation():
    crf = LinearChainCRF(K)
    emissions = torch.randn(2, 3, K)
    with pytest.raises(ValueError, match="left-aligned"):
        crf.log_partition(emissions, torch.tensor([[True, False, True], [True, True, True]]))
    with pytest.raises(ValueError, match="first position"):
        crf.decode(emissions, torch.tensor([[False, True, True], [True, True, True]]))
    with pytest.raises(ValueError, match="emissions"):
        crf.log_partition(torch.randn(2, 3, K + 1))
    with pytest.raises(ValueError, match="tags"):
        crf.log_likelihood(emissions, torch.zeros(2, 4, dtype=torch.long))
