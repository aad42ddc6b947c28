"""A tiny classifier task and its trainer, shared by the loop tests and the SIGKILL resume script."""

from __future__ import annotations

import torch

from seqnlp.data.batching import Batch, BatchIterator, TokenBucketSampler, pad
from seqnlp.nn import Embeddings, RNNEncoder
from seqnlp.tasks.classifier import SequenceClassifier
from seqnlp.train.loop import TrainConfig, Trainer


def toy_data(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        length = int(torch.randint(2, 9, (1,), generator=g))
        ids = torch.randint(4, 12, (length,), generator=g).tolist()
        out.append({"ids": ids, "label": int(5 in ids)})
    return out


def collate(exs):
    ids, lengths = pad([e["ids"] for e in exs])
    return Batch({"src": ids, "src_lengths": lengths, "labels": torch.tensor([e["label"] for e in exs])},
                 {"source": int(lengths.sum())})


def make_model():
    torch.manual_seed(0)
    return SequenceClassifier(Embeddings(12, 8, dropout=0.1), RNNEncoder(8, 8, cell="lstm"), 2, "max", 0.1)


def make_trainer(out_dir, data, evaluate=None, **kw):
    cfg = TrainConfig(**{"epochs": 3, "lr": 0.02, "progress": False, "log_every": 1, "seed": 3, **kw})
    sampler = TokenBucketSampler([len(e["ids"]) for e in data], max_tokens=64, seed=cfg.seed)
    model = make_model()
    it = BatchIterator(data, sampler, collate)

    def accuracy(m):
        correct = 0
        for b in BatchIterator(data, TokenBucketSampler([len(e["ids"]) for e in data], 256, shuffle=False), collate):
            correct += int((m(b).argmax(-1) == b.labels).sum())
        return {"accuracy": correct / len(data), "loss": 0.0}

    return Trainer(model, it, cfg, out_dir, evaluate or accuracy, {"task": "toy"}, {"labels.json": ["no", "yes"]})
