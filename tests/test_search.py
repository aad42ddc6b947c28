"""Search (greedy, beam, sampling) on tiny deterministic decoders, checked against brute force."""

import itertools
import math

import pytest
import torch
from torch import Tensor, nn

from seqnlp.search import (
    BeamSearch,
    Decodable,
    batch_size_of,
    beam_search,
    filter_logits,
    greedy,
    max_lengths,
    sample,
)

BOS, EOS = 0, 1


class MarkovModel:
    """p(next | prev, source) = softmax(table[prev] + source_vector): exact row-wise arithmetic.

    ``batch`` is a float64 tensor of source vectors, shape (B, V); the state is that tensor's rows.
    """

    def __init__(
        self, vocab_size: int = 7, seed: int = 0, self_loop: float = 0.0, eos_bias: float = 0.0
    ) -> None:
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(vocab_size, vocab_size, generator=g, dtype=torch.float64)
        self.table += self_loop * torch.eye(vocab_size, dtype=torch.float64)
        self.table[:, EOS] += eos_bias
        self.table[:, BOS] = -math.inf  # BOS is never produced

    def start(self, batch: Tensor) -> Tensor:
        return batch.clone()

    def step(self, tokens: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        return (self.table[tokens] + state).log_softmax(-1), state

    def reorder(self, state: Tensor, index: Tensor) -> Tensor:
        return state.index_select(0, index)

    def merge(self, states: list[Tensor]) -> Tensor:
        return torch.cat(states)

    def sources(self, batch_size: int, seed: int = 1, scale: float = 1.0) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        return scale * torch.randn(batch_size, self.table.size(0), generator=g, dtype=torch.float64)


class GRUModel(nn.Module):
    """A tiny GRU encoder-decoder that never produces BOS.

    Its state ``(hidden (1, B, H), memory (B, H))`` has the batch in dimension 1 and 0.
    """

    def __init__(self, vocab_size: int = 7, hidden: int = 8, eos_bias: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(vocab_size, hidden)
        self.encoder = nn.GRU(hidden, hidden, batch_first=True)
        self.cell = nn.GRUCell(2 * hidden, hidden)
        self.out = nn.Linear(hidden, vocab_size)
        with torch.no_grad():
            self.out.weight.mul_(4.0)  # peaked distributions, so that outputs vary between inputs
            self.out.bias[EOS] += eos_bias
        self.double()

    def start(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        _, h = self.encoder(self.embed(batch))  # (1, B, H)
        return h, h[0]

    def step(self, tokens: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, memory = state
        h_new = self.cell(torch.cat([self.embed(tokens), memory], -1), h[0])
        logits = self.out(h_new)
        logits[:, BOS] = -math.inf
        return logits.log_softmax(-1), (h_new.unsqueeze(0), memory)

    def reorder(self, state: tuple[Tensor, Tensor], index: Tensor) -> tuple[Tensor, Tensor]:
        h, memory = state
        return h.index_select(1, index), memory.index_select(0, index)

    def merge(self, states: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        return torch.cat([h for h, _ in states], 1), torch.cat([m for _, m in states], 0)


def gru_batch(batch_size: int = 4, src_len: int = 5) -> Tensor:
    g = torch.Generator().manual_seed(3)
    return torch.randint(2, 7, (batch_size, src_len), generator=g)


def brute_force(model: MarkovModel, source: Tensor, max_len: int, alpha: float) -> list[tuple[list, float]]:
    """Every output of up to max_len tokens with its final score, best first."""
    vocab = model.table.size(0)
    content = [v for v in range(vocab) if v not in (BOS, EOS)]
    results = []
    for n in range(max_len + 1):
        for seq in itertools.product(content, repeat=n):
            prev, total = BOS, 0.0
            for tok in (*seq, EOS):
                lp, _ = model.step(torch.tensor([prev]), source.unsqueeze(0))
                total += float(lp[0, tok])
                prev = tok
            results.append((list(seq), total / ((5 + n + 1) / 6) ** alpha))
    return sorted(results, key=lambda r: r[1], reverse=True)


def test_protocol_and_batch_size():
    assert isinstance(MarkovModel(), Decodable) and isinstance(GRUModel(), Decodable)
    assert batch_size_of(torch.zeros(3, 2)) == 3
    assert batch_size_of((torch.zeros(4, 2), torch.zeros(4))) == 4
    with pytest.raises(TypeError, match="batch_size"):
        batch_size_of(object())


def test_max_lengths():
    out = max_lengths(torch.tensor([1, 4, 10]), ratio=1.5, min_len=3, cap=12)
    assert out.tolist() == [3, 6, 12] and out.dtype == torch.long


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_is_exact_with_a_wide_beam(alpha):
    model, max_len, vocab = MarkovModel(vocab_size=5), 3, 5
    sources = model.sources(2)
    out = beam_search(
        model,
        sources,
        bos=BOS,
        eos=EOS,
        max_len=max_len,
        beam_size=vocab**max_len,
        length_penalty=alpha,
        n_best=5,
    )
    for b in range(2):
        expected = brute_force(model, sources[b], max_len, alpha)[:5]
        assert [tokens for tokens, _ in out[b]] == [tokens for tokens, _ in expected]
        for (_, score), (_, ref) in zip(out[b], expected):
            assert score == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("model_name", ["markov", "gru"])
def test_batched_beam_equals_each_input_alone(model_name):
    if model_name == "markov":  # EOS biases: hypotheses end at various lengths, before max_len too
        model = MarkovModel(eos_bias=0.6)
        batch = model.sources(4, scale=2.0)
    else:
        model, batch = GRUModel(eos_bias=1.5), gru_batch()
    max_len = torch.tensor([6, 2, 0, 4])
    kwargs = dict(bos=BOS, eos=EOS, beam_size=3, n_best=3, length_penalty=0.6)
    together = beam_search(model, batch, max_len=max_len, **kwargs)
    for b in range(4):
        alone = beam_search(model, batch[b : b + 1], max_len=int(max_len[b]), **kwargs)[0]
        assert [t for t, _ in alone] == [t for t, _ in together[b]]
        assert [s for _, s in alone] == pytest.approx([s for _, s in together[b]], abs=1e-12)
        assert all(len(tokens) <= max_len[b] for tokens, _ in together[b])
    assert together[2][0][0] == []  # max_len 0: only the empty output


@pytest.mark.parametrize("model_name", ["markov", "gru"])
def test_beam_size_one_equals_greedy(model_name):
    if model_name == "markov":
        model = MarkovModel(seed=2, eos_bias=0.6)
        batch = model.sources(4, scale=2.0)
    else:
        model, batch = GRUModel(eos_bias=1.5), gru_batch()
    max_len = torch.tensor([7, 3, 5, 1])
    beam = beam_search(model, batch, bos=BOS, eos=EOS, max_len=max_len, beam_size=1)
    greedy_out = greedy(model, batch, bos=BOS, eos=EOS, max_len=max_len)
    assert [hyps[0][0] for hyps in beam] == greedy_out
    assert all(len(out) <= n for out, n in zip(greedy_out, max_len.tolist()))
    assert all(BOS not in out and EOS not in out for out in greedy_out)


def test_n_best_sorted_and_distinct():
    model, batch = GRUModel(), gru_batch()
    out = beam_search(model, batch, bos=BOS, eos=EOS, max_len=6, beam_size=5, n_best=5)
    for hyps in out:
        assert len(hyps) == 5
        scores = [s for _, s in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(t) for t, _ in hyps}) == 5


def test_min_len():
    model = MarkovModel(seed=4)
    model.table[:, EOS] += 3.0  # EOS is very likely
    sources = model.sources(3)
    assert min(len(h[0][0]) for h in beam_search(model, sources, bos=BOS, eos=EOS, max_len=8)) < 3
    out = beam_search(model, sources, bos=BOS, eos=EOS, max_len=8, beam_size=3, n_best=3, min_len=3)
    assert all(3 <= len(tokens) <= 8 for hyps in out for tokens, _ in hyps)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram(n):
    model = MarkovModel(seed=5, self_loop=6.0)  # loves repeating the previous token
    model.table[:, EOS] -= 4.0
    sources = model.sources(3)
    kwargs = dict(bos=BOS, eos=EOS, max_len=10, beam_size=4, n_best=4)

    def has_repeat(tokens):
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        return len(grams) != len(set(grams))

    plain = beam_search(model, sources, **kwargs)
    assert any(has_repeat(tokens) for hyps in plain for tokens, _ in hyps)
    blocked = beam_search(model, sources, no_repeat_ngram_size=n, **kwargs)
    for hyps in blocked:
        assert hyps
        assert not any(has_repeat(tokens) for tokens, _ in hyps)


def test_sampling_is_reproducible():
    model, batch = GRUModel(), gru_batch()
    kwargs = dict(bos=BOS, eos=EOS, max_len=torch.tensor([8, 2, 5, 8]), temperature=1.5, n=3)
    first = sample(model, batch, generator=torch.Generator().manual_seed(7), **kwargs)
    again = sample(model, batch, generator=torch.Generator().manual_seed(7), **kwargs)
    other = sample(model, batch, generator=torch.Generator().manual_seed(8), **kwargs)
    assert len(first) == 12 and first == again and first != other
    assert all(len(out) <= 2 for out in first[3:6])
    assert all(BOS not in out and EOS not in out for out in first)


def test_top_k_one_equals_greedy():
    model, batch = GRUModel(), gru_batch()
    max_len = torch.tensor([8, 2, 5, 8])
    reference = greedy(model, batch, bos=BOS, eos=EOS, max_len=max_len)
    out = sample(model, batch, bos=BOS, eos=EOS, max_len=max_len, top_k=1, n=2, temperature=3.0)
    assert out == [seq for seq in reference for _ in range(2)]  # input0-sample0, input0-sample1, ...
    out = sample(model, batch, bos=BOS, eos=EOS, max_len=max_len, top_p=1e-6)
    assert out == reference


def test_filter_logits_top_k():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0], [0.0, -1.0, 5.0, 4.0]])
    out = filter_logits(logits, top_k=2)
    assert torch.isinf(out).tolist() == [[True, False, False, True], [True, True, False, False]]
    assert torch.equal(out[~torch.isinf(out)], logits[~torch.isinf(out)])
    assert torch.equal(filter_logits(logits, top_k=10), logits)


def test_filter_logits_top_p_keeps_minimal_nucleus():
    probs = torch.tensor([0.05, 0.5, 0.15, 0.3])
    logits = probs.log()
    kept = {
        p: (~torch.isinf(filter_logits(logits, top_p=p))).nonzero().view(-1).tolist()
        for p in (0.3, 0.5, 0.75, 0.85, 0.99)
    }
    assert kept == {0.3: [1], 0.5: [1], 0.75: [1, 3], 0.85: [1, 2, 3], 0.99: [0, 1, 2, 3]}
    batch = torch.stack([logits, logits.flip(0)])
    out = filter_logits(batch, top_p=0.75)
    assert (~torch.isinf(out)).tolist() == [[False, True, False, True], [True, False, True, False]]
    assert not torch.isinf(logits).any()  # input untouched


def join_at_steps(model, batch, max_len: Tensor, joins: list[int], **kwargs) -> dict:
    """Input i joins a running BeamSearch after ``joins[i]`` steps (inputs joining at one step are added
    together); the finished hypotheses of every input."""
    search, out, step = BeamSearch(model, bos=BOS, eos=EOS, **kwargs), {}, 0
    while len(out) < len(joins):
        new = [i for i, j in enumerate(joins) if j == step]
        if new:
            search.add(batch[new], max_len[new], ids=new)
        out.update(search.step())
        step += 1
    assert len(search) == 0 and search.rows == 0
    return out


@pytest.mark.parametrize("model_name", ["markov", "gru"])
@pytest.mark.parametrize("constraints", [{}, {"min_len": 2, "no_repeat_ngram_size": 2}])
def test_inputs_joining_a_running_beam_search_get_what_they_get_alone(model_name, constraints):
    """Continuous batching: inputs added while others are searched (each with its own step count, length
    bound, min_len, n-gram history and length penalty) get exactly their results searched alone."""
    if model_name == "markov":
        model = MarkovModel(eos_bias=0.6)
        batch = model.sources(6, scale=2.0)
    else:
        model, batch = GRUModel(eos_bias=1.5), gru_batch(6)
    max_len = torch.tensor([6, 2, 0, 4, 7, 5])
    kwargs = dict(beam_size=3, n_best=3, length_penalty=0.6, **constraints)
    joined = join_at_steps(model, batch, max_len, [0, 0, 1, 3, 3, 4], **kwargs)
    for b in range(6):
        alone = beam_search(model, batch[b : b + 1], bos=BOS, eos=EOS, max_len=int(max_len[b]), **kwargs)[0]
        assert [t for t, _ in joined[b]] == [t for t, _ in alone], b
        assert [s for _, s in joined[b]] == pytest.approx([s for _, s in alone], abs=1e-12)
    assert joined[2][0][0] == []  # max_len 0


def test_adding_to_a_running_search_needs_merge():
    class NoMerge(MarkovModel):
        merge = None

    model = NoMerge()
    search = BeamSearch(model, bos=BOS, eos=EOS, beam_size=2)
    search.add(model.sources(2), 5)
    search.step()
    with pytest.raises(TypeError, match="merge"):
        search.add(model.sources(1), 5)
