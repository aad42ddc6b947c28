"""Weight averaging (``train.ema_decay``): the running average's arithmetic, evaluation and checkpoints on the
averaged weights while training goes on from the raw ones, and an exact resume."""

import pytest
import torch
from toy import make_model, make_trainer, toy_data

from seqnlp.train import checkpoint as ck
from seqnlp.train.loop import WeightAverage


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def test_average_follows_the_formula_with_warm_up():
    model = torch.nn.Linear(3, 2)
    ema = WeightAverage(model, decay=0.9)
    seen = []
    for k in range(5):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(float(k + 1))
        seen.append(_params(model))
        ema.update()
    expect = seen[0]
    for n, w in enumerate(seen[1:], start=1):
        d = min(0.9, (1 + n) / (10 + n))
        expect = [d * e + (1 - d) * x for e, x in zip(expect, w)]
    for a, e in zip(ema.avg, expect):
        torch.testing.assert_close(a, e)
    before = _params(model)
    ema.swap()
    for p, e in zip(model.parameters(), expect):
        torch.testing.assert_close(p.detach(), e)
    ema.swap()
    assert all(torch.equal(p.detach(), b) for p, b in zip(model.parameters(), before))
    with pytest.raises(ValueError, match="ema_decay"):
        WeightAverage(model, 1.0)


def test_evaluation_and_checkpoints_see_the_average(tmp_path):
    data = toy_data(80)
    seen = []

    def evaluate(m):
        seen.append(_params(m))
        return {"loss": 0.0}

    t = make_trainer(tmp_path, data, evaluate=evaluate, epochs=3, max_steps=9, eval_every=9, ema_decay=0.8,
                     ema_start=2, ema_eval_raw=True)
    t.fit()
    seen, raw_seen = seen[:-1], seen[-1]  # the last call saw the raw weights (ema_eval_raw)
    assert all(torch.equal(s, r) for s, r in zip(raw_seen, _params(t.model)))
    assert "raw_loss" in [r for r in t.history if r.get("event") == "eval"][-1]
    assert t.ema.updates == 7  # steps 3..9
    raw = _params(t.model)
    for s, a in zip(seen[-1], t.ema.avg):
        assert torch.equal(s, a)  # the evaluation ran on the average ...
    assert not all(torch.equal(s, r) for s, r in zip(seen[-1], raw))  # ... which differs from the raw weights
    saved = make_model()
    ck.load_weights(saved, ck.resolve(tmp_path))
    for p, a in zip(saved.parameters(), t.ema.avg):
        assert torch.equal(p.detach(), a)  # and the checkpoint holds the average


def test_resume_with_average_equals_uninterrupted_run(tmp_path):
    data = toy_data(80)
    kw = {"epochs": 2, "ema_decay": 0.9, "eval_every": 3}
    full = make_trainer(tmp_path / "full", data, max_steps=14, **kw)
    full.fit()
    first = make_trainer(tmp_path / "cut", data, max_steps=6, **kw)
    first.fit()
    second = make_trainer(tmp_path / "cut", data, max_steps=14, **kw)
    second.fit()
    for a, b in zip(full.model.parameters(), second.model.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(full.ema.avg, second.ema.avg):
        assert torch.equal(a, b)
    assert full.ema.updates == second.ema.updates == 14
