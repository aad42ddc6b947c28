"""Word vectors from unlabelled text: skip-gram with negative sampling (Mikolov et al., 2013).

Each word predicts the words within a random window around it (1..``window`` on each side); the model
scores a (word, context) pair by the dot product of the word's vector and the context's output vector,
and learns to tell true pairs from ``negatives`` contexts drawn from the unigram distribution raised to
0.75 (logistic loss). Frequent words are subsampled (kept with probability ``sqrt(t / f) + t / f``).
Pairs are built for a whole chunk of the corpus at once with tensor operations (no Python loop over
tokens); the embeddings take sparse gradients (``SparseAdam`` on the mean loss of large batches, the
learning rate decayed linearly).

    words, vectors = train_skipgram(sentences, dim=100, epochs=5)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = ["SkipGram", "skipgram_pairs", "train_skipgram"]


class SkipGram(nn.Module):
    """Word vectors ``center`` (V, D) and context vectors ``context`` (V, D), both with sparse gradients."""

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.center = nn.Embedding(vocab_size, dim, sparse=True)
        self.context = nn.Embedding(vocab_size, dim, sparse=True)
        nn.init.uniform_(self.center.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.context.weight)

    def loss(self, centers: Tensor, contexts: Tensor, negatives: Tensor) -> Tensor:
        """Mean negative-sampling loss of pairs ``centers (N,)``/``contexts (N,)`` with ``negatives (N, K)``."""
        u = self.center(centers)  # (N, D)
        pos = F.logsigmoid((u * self.context(contexts)).sum(-1))  # (N,)
        neg = F.logsigmoid(-torch.bmm(self.context(negatives), u.unsqueeze(-1)).squeeze(-1)).sum(-1)  # (N,)
        return -(pos + neg).mean()


def skipgram_pairs(ids: Tensor, sentence: Tensor, window: int, generator: torch.Generator | None = None
                   ) -> tuple[Tensor, Tensor]:
    """All (center, context) pairs of a token stream, with word2vec's dynamic window.

    Args:
        ids: (N,) word ids of consecutive tokens.
        sentence: (N,) sentence number of each token (pairs never cross a sentence boundary).
        window: the largest distance; each center draws its own window size in 1..window.

    Returns:
        ``centers`` and ``contexts``, both (P,).
    """
    n = ids.numel()
    reach = torch.randint(1, window + 1, (n,), generator=generator)
    centers, contexts = [], []
    for d in range(1, min(window, n - 1) + 1):
        same = sentence[:-d] == sentence[d:]
        right = same & (reach[:-d] >= d)  # center i, context i + d
        left = same & (reach[d:] >= d)  # center i + d, context i
        centers += [ids[:-d][right], ids[d:][left]]
        contexts += [ids[d:][right], ids[:-d][left]]
    if not centers:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty
    return torch.cat(centers), torch.cat(contexts)


def train_skipgram(sentences: Sequence[Sequence[str]], dim: int = 100, window: int = 5, negatives: int = 5,
                   min_count: int = 3, epochs: int = 5, lr: float = 0.01, batch_size: int = 16384,
                   subsample: float = 1e-4, chunk_tokens: int = 1_000_000, seed: int = 1,
                   progress: bool = True) -> tuple[list[str], Tensor]:
    """Train skip-gram vectors; returns the vocabulary (most frequent first) and its vectors (V, D)."""
    g = torch.Generator().manual_seed(seed)
    counts = Counter(w for s in sentences for w in s)
    words = [w for w, c in counts.most_common() if c >= min_count]
    if not words:
        raise ValueError(f"no word occurs {min_count} times")
    index = {w: i for i, w in enumerate(words)}
    freq = torch.tensor([counts[w] for w in words], dtype=torch.float)
    ids_list, sent_list = [], []
    for k, s in enumerate(sentences):
        ids = [index[w] for w in s if w in index]
        ids_list += ids
        sent_list += [k] * len(ids)
    ids_all = torch.tensor(ids_list, dtype=torch.long)
    sent_all = torch.tensor(sent_list, dtype=torch.long)
    f = freq / freq.sum()
    keep_prob = ((subsample / f).sqrt() + subsample / f).clamp(max=1.0) if subsample > 0 else torch.ones_like(f)
    noise = freq.pow(0.75)
    noise_table = torch.multinomial(noise / noise.sum(), 10_000_000, replacement=True, generator=g)

    model = SkipGram(len(words), dim)
    opt = torch.optim.SparseAdam(list(model.parameters()), lr=lr)
    expected_pairs = float(keep_prob[ids_all].sum()) * (window + 1)  # about 2 * mean(reach) per kept token
    total_steps = max(1, math.ceil(epochs * expected_pairs / batch_size))
    step = 0
    bar = tqdm(total=total_steps, desc="skip-gram", disable=not progress, dynamic_ncols=True)
    for _epoch in range(epochs):
        for start in range(0, ids_all.numel(), chunk_tokens):
            ids = ids_all[start : start + chunk_tokens]
            sent = sent_all[start : start + chunk_tokens]
            kept = torch.rand(ids.numel(), generator=g) < keep_prob[ids]
            centers, contexts = skipgram_pairs(ids[kept], sent[kept], window, g)
            order = torch.randperm(centers.numel(), generator=g)
            for b in range(0, order.numel(), batch_size):
                sel = order[b : b + batch_size]
                neg = noise_table[torch.randint(0, noise_table.numel(), (sel.numel(), negatives), generator=g)]
                for group in opt.param_groups:
                    group["lr"] = lr * max(1e-4, 1 - step / total_steps)
                loss = model.loss(centers[sel], contexts[sel], neg)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                bar.update(1)
                if step % 200 == 0:
                    bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return words, model.center.weight.detach().clone()


def ppmi_svd_vectors(sentences: Sequence[Sequence[str]], dim: int = 100, window: int = 5, min_count: int = 3,
                     context_alpha: float = 0.75, chunk_tokens: int = 2_000_000, seed: int = 1
                     ) -> tuple[list[str], Tensor]:
    """Count-based word vectors: positive PMI of windowed co-occurrences, reduced by a truncated SVD.

    Co-occurrences within ``window`` (weighted 1/distance) are counted over the whole corpus with sparse
    tensors, PMI uses the context distribution raised to ``context_alpha`` (Levy et al., 2015), and the
    vectors are ``U * sqrt(S)`` of a randomised rank-``dim`` SVD of the PPMI matrix. Much cheaper than
    skip-gram on a CPU, and of similar use as features. Returns the vocabulary (most frequent first) and
    its vectors (V, dim).
    """
    torch.manual_seed(seed)
    counts = Counter(w for s in sentences for w in s)
    words = [w for w, c in counts.most_common() if c >= min_count]
    if len(words) <= dim:
        raise ValueError(f"only {len(words)} words occur {min_count} times: fewer than dim={dim}")
    index = {w: i for i, w in enumerate(words)}
    ids_list, sent_list = [], []
    for k, s in enumerate(sentences):
        ids = [index[w] for w in s if w in index]
        ids_list += ids
        sent_list += [k] * len(ids)
    ids_all = torch.tensor(ids_list, dtype=torch.long)
    sent_all = torch.tensor(sent_list, dtype=torch.long)
    V = len(words)
    total = None
    for start in range(0, ids_all.numel(), chunk_tokens):
        ids = ids_all[start : start + chunk_tokens + window]  # overlap so that no pair is lost at a cut
        sent = sent_all[start : start + chunk_tokens + window]
        keys, weights = [], []
        for d in range(1, window + 1):
            first = torch.arange(max(0, ids.numel() - d))
            first = first[first < chunk_tokens]  # pairs starting in this chunk only
            same = sent[first] == sent[first + d]
            a, b = ids[first[same]], ids[first[same] + d]
            keys += [a * V + b, b * V + a]  # symmetric
            weights += [torch.full((2 * a.numel(),), 1.0 / d)]
        key = torch.cat(keys)
        uniq, inverse = torch.unique(key, return_inverse=True)
        summed = torch.zeros(uniq.numel()).index_add_(0, inverse, torch.cat(weights))
        part = torch.sparse_coo_tensor(torch.stack([uniq // V, uniq % V]), summed, (V, V), check_invariants=False)
        total = part if total is None else (total + part)
    total = total.coalesce()
    (rows, cols), values = total.indices(), total.values()
    word_sums = torch.zeros(V).index_add_(0, rows, values)
    ctx = torch.zeros(V).index_add_(0, cols, values).pow(context_alpha)
    pmi = torch.log(values * ctx.sum() / (word_sums[rows] * ctx[cols]))
    keep = pmi > 0
    ppmi = torch.sparse_coo_tensor(torch.stack([rows[keep], cols[keep]]), pmi[keep], (V, V)).coalesce()
    U, S, _ = torch.svd_lowrank(ppmi, q=dim, niter=6)
    return words, U * S.sqrt()
