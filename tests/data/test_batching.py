import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqnlp.data.batching import Batch, BatchIterator, TokenBucketSampler, lengths_to_mask, pad


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 50), min_size=1, max_size=200),
    max_tokens=st.integers(1, 300),
    max_sentences=st.one_of(st.none(), st.integers(1, 20)),
    shuffle=st.booleans(),
    seed=st.integers(0, 5),
)
def test_every_example_exactly_once_and_budget_kept(lengths, max_tokens, max_sentences, shuffle, seed):
    s = TokenBucketSampler(lengths, max_tokens=max_tokens, max_sentences=max_sentences, shuffle=shuffle, seed=seed,
                           bucket_batches=3)
    for _ in range(2):  # two epochs
        seen = [i for b in s for i in b]
        assert sorted(seen) == list(range(len(lengths)))
    for b in s:
        longest = max(max(lengths[i], 1) for i in b)
        assert len(b) == 1 or longest * len(b) <= max_tokens
        assert max_sentences is None or len(b) <= max_sentences


def test_seeded_and_epochs_differ():
    lengths = list(range(1, 101))
    a = TokenBucketSampler(lengths, max_tokens=200, seed=3)
    b = TokenBucketSampler(lengths, max_tokens=200, seed=3)
    ea, eb = list(a), list(b)
    assert ea == eb
    assert list(a) != ea  # next epoch reshuffles


def test_buckets_group_similar_lengths():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 100, (2000,), generator=g).tolist()
    s = TokenBucketSampler(lengths, max_tokens=1000, seed=0)
    padded = sum(max(lengths[i] for i in b) * len(b) for b in s)
    assert padded / sum(lengths) < 1.1  # < 10 % padding


def test_resume_mid_epoch_gives_same_batches():
    lengths = [(i * 7) % 23 + 1 for i in range(300)]
    full = TokenBucketSampler(lengths, max_tokens=60, seed=1)
    epoch0 = list(full)
    epoch1 = list(full)
    s = TokenBucketSampler(lengths, max_tokens=60, seed=1)
    it = iter(s)
    first = [next(it) for _ in range(5)]
    state = s.state_dict()
    resumed = TokenBucketSampler(lengths, max_tokens=60, seed=99)
    resumed.load_state_dict(state)
    assert first + list(resumed) == epoch0
    assert list(resumed) == epoch1


def test_empty_dataset_rejected():
    with pytest.raises(ValueError, match="empty"):
        TokenBucketSampler([], max_tokens=10)


def test_pad_and_mask():
    ids, lengths = pad([[5, 6, 7], [8], []])
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0]]
    assert lengths.tolist() == [3, 1, 0]
    assert lengths_to_mask(lengths).tolist() == [[True] * 3, [True, False, False], [False] * 3]


def test_batch_iterator_and_batch():
    examples = [[1] * n for n in (3, 1, 4, 1, 5)]
    s = TokenBucketSampler([len(e) for e in examples], max_sentences=2, shuffle=False)

    def collate(exs):
        ids, lengths = pad(exs)
        return Batch({"src": ids, "src_lengths": lengths}, {"source": int(lengths.sum())})

    batches = list(BatchIterator(examples, s, collate))
    assert sorted(i for b in batches for i in b.meta["indices"]) == list(range(5))
    b = batches[0].to("cpu")
    assert "src" in b and len(b) == len(b.meta["indices"]) and b.src.shape[0] == len(b)
