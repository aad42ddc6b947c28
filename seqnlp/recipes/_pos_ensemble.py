"""An ensemble of trained POS taggers: a product of experts, decoded once.

Each member scores a sentence with its own vocabularies and features. A CRF member contributes its
emission scores and its transition scores; a softmax member its per-token log-probabilities. The sums
form one linear-chain CRF whose Viterbi path is the ensemble's tagging (the tag sequence maximising the
summed scores of all members) -- members with different word vocabularies, pretrained vectors, encoders
or seeds combine as long as they share the tag set.

    python recipes/pos_tagging.py --mode ensemble --model runs/a --ensemble runs/b,runs/c [--split test]
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..data.batching import TokenBucketSampler
from ..data.errors import DataError
from ..nn.crf import LinearChainCRF
from ._common import record_result, save_result_copy, write_json

__all__ = ["ensemble_tag", "ensemble"]


def ensemble_tag(predictors: Sequence, sentences: Sequence[Sequence[str]], max_tokens: int = 6000,
                 progress: bool = False) -> list[list[str]]:
    """Tag token lists with the summed scores of ``predictors`` (:class:`TaggerPredictor` objects)."""
    from .pos_tagging import Featurizer

    tags = predictors[0].tags
    for p in predictors[1:]:
        if p.tags != tags:
            raise ValueError(f"ensemble members must share the tag set: {p.tags} != {tags}")
    device = predictors[0].device
    members = []
    with torch.inference_mode():
        for p in predictors:
            encoded, chars, lengths = p.feats.encode([{"tokens": list(s)} for s in sentences])
            p.model.eval()
            char_feats = p.model.word_table_features(chars.to(device), lengths.to(device))
            members.append((p.model.to(device), encoded, chars, lengths, char_feats))
        crf = LinearChainCRF(len(tags)).to(device)
        for param in crf.parameters():
            param.zero_()
        for model, *_ in members:
            if model.crf is not None:
                crf.transitions += model.crf.transitions
                crf.start_transitions += model.crf.start_transitions
                crf.end_transitions += model.crf.end_transitions
        sampler = TokenBucketSampler([max(1, len(s)) for s in sentences], max_tokens=max_tokens, shuffle=False,
                                     sort=True)
        out: list[list[str]] = [[] for _ in sentences]
        for idx in tqdm(list(sampler), desc="ensemble", disable=not progress, leave=False, dynamic_ncols=True):
            total = None
            for model, encoded, chars, lengths, char_feats in members:
                batch = Featurizer.collate([encoded[i] for i in idx], chars, lengths, char_feats).to(device)
                scores = model(batch).float()
                if model.crf is None:
                    scores = scores.log_softmax(-1)
                total = scores if total is None else total + scores
                mask = model.mask(batch)
            pred = crf.decode(total, mask).cpu()
            for row, i in enumerate(idx):
                out[i] = [tags[t] for t in pred[row, : len(sentences[i])].tolist()]
    return out


def ensemble(model_dir: str | Path, args) -> dict:
    """``--mode ensemble``: score ``--model`` together with ``--ensemble`` on ``--split`` of the first
    model's dataset; writes ``metrics_ensemble_<split>.json`` beside the first model and, with ``--record
    NAME``, ``results/pos_tagging/NAME.json``."""
    from .pos_tagging import TASK, _run_dir, load_data, load_predictor, tagging_metrics

    t0 = time.time()
    dirs = [str(model_dir)] + [d for d in (args.ensemble or "").split(",") if d]
    if len(dirs) < 2:
        raise SystemExit("error: --mode ensemble needs --ensemble DIR[,DIR...] besides --model")
    predictors = [load_predictor(d, device="auto") for d in dirs]
    cfg = predictors[0].config
    splits = load_data(cfg.data)
    if args.split not in splits:
        raise DataError(f"no split {args.split!r} (found {sorted(splits)})", cfg.data.name)
    data = splits[args.split]
    t_tag = time.perf_counter()
    pred = ensemble_tag(predictors, [ex["tokens"] for ex in data], cfg.data.eval_max_tokens, progress=True)
    seconds = time.perf_counter() - t_tag
    metrics = tagging_metrics([ex["tags"] for ex in data], pred, predictors[0].feats.oov(data))
    metrics.update(members=dirs, split=args.split, tagging_seconds=seconds, sentences_per_s=len(data) / seconds)
    path = _run_dir(model_dir) / f"metrics_ensemble_{args.split}.json"
    write_json(path, metrics)
    if args.record:
        out = path.parent / f"ensemble_{args.split}"  # not the first model's own result.json
        out.mkdir(exist_ok=True)
        rec = record_result(TASK, None, out, metrics, time.time() - t0, {"ensemble": dirs})
        save_result_copy(rec, TASK, args.record)
    print(json.dumps({k: v for k, v in metrics.items() if k != "per_tag"}, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return metrics
