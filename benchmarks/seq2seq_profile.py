"""Where a training step of the translation model spends its time, and what model variants cost.

Builds the model of ``multi30k_de_en_45min.yaml`` (or ``--config``) at random weights, feeds it synthetic batches
shaped like Multi30k's (sentence lengths drawn around the data's mean, 2,000-token budget), and

* prints ``torch.profiler``'s table of the top operators over ``--steps`` forward+backward+Adam steps;
* times the same steps for variants given as ``name:key=value,key=value`` (model overrides), side by side in one
  process, and prints target tokens/s and the ratio to the first variant.

    python benchmarks/seq2seq_profile.py --threads 1 --variants base: if:input_feeding=true \\
        h384:hidden_size=384 torchdrop:torch_dropout=true --profile

``torch_dropout=true`` makes the variant's dropout layers call ``torch.nn.functional.dropout`` instead of
:func:`seqnlp.nn.dropout.dropout`.

Synthetic batches keep the run independent of the data; the relative costs are what it is for.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch

from seqnlp.config import load_config
from seqnlp.data.batching import Batch
from seqnlp.nn import dropout as seqnlp_dropout
from seqnlp.tasks.translation import Config, build_model
from seqnlp.train.device import autocast, keep_freed_memory

ROOT = Path(__file__).resolve().parents[1]
_ours = seqnlp_dropout.dropout


def _torch_dropout(x, p, training=True):
    return torch.nn.functional.dropout(x, p, training)


def synthetic_batches(n: int, vocab: int, budget: int, mean_len: int, seed: int = 0) -> list[Batch]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        length = int(torch.randint(mean_len - 6, mean_len + 7, (1,), generator=g))
        rows = max(1, budget // (length + 1))
        src = torch.randint(4, vocab, (rows, length), generator=g)
        tgt = torch.randint(4, vocab, (rows, length + 1), generator=g)
        lengths = torch.full((rows,), length)
        out.append(Batch({"src": src, "src_lengths": lengths, "tgt_in": tgt[:, :-1], "tgt_out": tgt[:, 1:]},
                         {"source": src.numel(), "target": tgt[:, 1:].numel()}))
    return out


def run_steps(model, opt, batches, dtype) -> float:
    start = time.perf_counter()
    for b in batches:
        with autocast(torch.device("cpu"), dtype):
            loss, _ = model.loss(b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "recipes/configs/translation/multi30k_de_en_45min.yaml"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=20, help="timed steps per variant (after 3 warm-up steps)")
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--mean-len", type=int, default=15, help="mean subword length of a sentence")
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    p.add_argument("--malloc", action="store_true",
                   help="keep_freed_memory() first (glibc: no mmap/munmap per large tensor), as training does")
    p.add_argument("--profile", action="store_true", help="print the operator table of the first variant")
    p.add_argument("--variants", nargs="+", default=["base:"], help="name:key=value,... model overrides")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    if args.malloc:
        print("keep_freed_memory:", keep_freed_memory())
    cfg = load_config(Config, args.config)
    dtype = None if args.fp32 else torch.bfloat16
    budget = cfg.data.max_tokens
    batches = synthetic_batches(args.steps + 3, args.vocab, budget, args.mean_len)
    tokens = sum(b.n_tokens["target"] for b in batches[3:])
    base = None
    for spec in args.variants:
        name, _, kv = spec.partition(":")
        m = replace(cfg.model, src_vocab=args.vocab, tgt_vocab=args.vocab, pad_id=0)
        seqnlp_dropout.dropout = _ours
        for item in filter(None, kv.split(",")):
            k, _, v = item.partition("=")
            if k == "torch_dropout":  # the Dropout modules call torch's F.dropout (the mask before seqnlp's own)
                seqnlp_dropout.dropout = _torch_dropout
                continue
            old = getattr(m, k)
            m = replace(m, **{k: type(old)(v == "true" if isinstance(old, bool) else v)})
        torch.manual_seed(0)
        model = build_model(m).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        run_steps(model, opt, batches[:3], dtype)
        if args.profile and base is None:
            from torch.profiler import ProfilerActivity, profile
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                run_steps(model, opt, batches[3:], dtype)
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
        seconds = run_steps(model, opt, batches[3:], dtype)
        rate = tokens / seconds
        base = base or rate
        n_params = sum(p.numel() for p in model.parameters())
        print(f"{name:12s} {n_params / 1e6:6.2f}M params  {rate:8.0f} target tok/s  x{rate / base:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
