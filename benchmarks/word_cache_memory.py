"""Resident memory of the tagger's word-feature cache (seqnlp.nn.char_encoder.WordFeatureCache), full.

    python benchmarks/word_cache_memory.py [--capacity 20000] [--words 30000] [--char-hidden 64]

Encodes ``--words`` random words (2-10 characters) 500 at a time through a character BiLSTM of the tagger
recipe's size (``--char-hidden`` per direction) via the cache, once with ``--capacity`` words and once with
the cache off (capacity 0), each in a fresh process, and prints the RSS growth of each: their difference is the
cache's (its feature store and its keys).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys


def rss_mb() -> float:
    return int(open(f"/proc/{os.getpid()}/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(capacity: int, n_words: int, hidden: int) -> float:
    import torch

    from seqnlp.nn.char_encoder import CharEncoder, WordFeatureCache

    torch.set_num_threads(1)
    enc = CharEncoder(100, char_dim=50, hidden_size=hidden, kind="lstm").eval()
    cache = WordFeatureCache(capacity)
    rng = random.Random(0)
    words = [[rng.randint(2, 99) for _ in range(rng.randint(2, 10))] for _ in range(n_words)]
    chars = torch.zeros(n_words, 10, dtype=torch.long)
    for i, w in enumerate(words):
        chars[i, : len(w)] = torch.tensor(w)
    lengths = torch.tensor([len(w) for w in words])
    with torch.no_grad():
        for i in range(0, 1000, 500):  # the allocator's and the encoder's working memory first
            cache.table(enc, chars[i : i + 500], lengths[i : i + 500])
        before = rss_mb()
        for i in range(1000, n_words, 500):
            cache.table(enc, chars[i : i + 500], lengths[i : i + 500])
    return rss_mb() - before


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--capacity", type=int, default=20_000)
    p.add_argument("--words", type=int, default=30_000)
    p.add_argument("--char-hidden", type=int, default=64)
    p.add_argument("--one", type=int, default=-1, help=argparse.SUPPRESS)  # the child process: one capacity
    args = p.parse_args(argv)
    if args.one >= 0:
        print(measure(args.one, args.words, args.char_hidden))
        return 0
    grow = {}
    for cap in (0, args.capacity):
        out = subprocess.run([sys.executable, __file__, "--one", str(cap), "--words", str(args.words),
                              "--char-hidden", str(args.char_hidden)], capture_output=True, text=True, check=True)
        grow[cap] = float(out.stdout.strip())
    print(f"RSS growth over {args.words} words: no cache {grow[0]:.1f} MB, capacity {args.capacity} "
          f"{grow[args.capacity]:.1f} MB: the cache {grow[args.capacity] - grow[0]:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    raise SystemExit(main())
