"""Skip-gram pair generation against a naive loop; both vector methods learn shared contexts."""

import torch

from seqnlp.tasks.skipgram import ppmi_svd_vectors, skipgram_pairs, train_skipgram


def test_pairs_match_naive_enumeration():
    g = torch.Generator().manual_seed(0)
    ids = torch.tensor([5, 6, 7, 8, 9, 1, 2, 3])
    sent = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1])
    window = 3
    reach = torch.randint(1, window + 1, (len(ids),), generator=torch.Generator().manual_seed(0))
    centers, contexts = skipgram_pairs(ids, sent, window, g)
    expected = sorted((int(ids[i]), int(ids[j])) for i in range(len(ids)) for j in range(len(ids))
                      if i != j and sent[i] == sent[j] and abs(i - j) <= reach[i])
    assert sorted(zip(centers.tolist(), contexts.tolist())) == expected


def corpus():
    """'cat' and 'dog' share all their contexts; 'red' and 'blue' share theirs."""
    g = torch.Generator().manual_seed(0)
    sents = []
    for _ in range(400):
        animal = ["cat", "dog"][int(torch.randint(0, 2, (1,), generator=g))]
        colour = ["red", "blue"][int(torch.randint(0, 2, (1,), generator=g))]
        sents.append(["the", animal, "barks", "at", "a", colour, "ball", "today"])
    return sents


def cos(words, vectors, a, b):
    v = torch.nn.functional.normalize(vectors, dim=1)
    return float(v[words.index(a)] @ v[words.index(b)])


def test_ppmi_svd_puts_words_with_shared_contexts_together():
    words, vectors = ppmi_svd_vectors(corpus(), dim=4, window=2, min_count=1)
    assert vectors.shape == (len(words), 4) and words[0] == "the"
    assert cos(words, vectors, "cat", "dog") > 0.9
    assert cos(words, vectors, "red", "blue") > 0.9
    assert cos(words, vectors, "cat", "red") < cos(words, vectors, "cat", "dog")


def test_skipgram_trains_and_returns_the_vocabulary():
    words, vectors = train_skipgram(corpus(), dim=8, window=2, min_count=1, epochs=3, batch_size=256,
                                    subsample=0, progress=False)
    assert sorted(words) == sorted({w for s in corpus() for w in s}) and vectors.shape == (len(words), 8)
    assert cos(words, vectors, "cat", "dog") > cos(words, vectors, "cat", "today")
