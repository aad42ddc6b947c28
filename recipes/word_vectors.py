"""Word vectors for the POS tagger from unlabelled English text under $SEQNLP_DATA (training splits only).

    python recipes/word_vectors.py --output runs/pos_vectors/vectors.vec.gz [--method ppmi|sgns] [--dim 100]

The corpus is the raw text of the *training* splits of the local datasets -- UD English-EWT and CoNLL-2000
word forms, IMDB reviews, SST-2, Rotten Tomatoes, DailyDialog, Multi30k English -- split into UD-style
tokens and normalised as the tagger's word table is (lowercase, digits -> 0; ``--no-normalize`` keeps the
forms). No test or validation text is read. Vectors are count-based (``ppmi``: positive PMI + truncated
SVD, a few minutes on 2 cores) or skip-gram with negative sampling (``sgns``: much slower on a CPU).
Writes the word2vec text format and ``<output>.json`` (corpus size, sources, command, wall time).
Use them with ``python recipes/pos_tagging.py ... model.pretrained=<output>``.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see recipes/pos_tagging.py

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from seqnlp.data.loading import data_root  # noqa: E402
from seqnlp.data.readers import read_conll_columns, read_conllu, read_dailydialog, read_lines  # noqa: E402
from seqnlp.data.word_vectors import normalize_word, split_words, write_vectors  # noqa: E402
from seqnlp.tasks.skipgram import ppmi_svd_vectors, train_skipgram  # noqa: E402
from seqnlp.train.rundir import git_commit, machine, write_json  # noqa: E402

SOURCES = ("ewt", "conll2000", "imdb", "sst2", "rt_polarity", "dailydialog", "multi30k")


def corpus(name: str, root: Path) -> list[list[str]]:
    """Token lists of one source (its training split only)."""
    if name == "ewt":
        return [ex["tokens"] for ex in read_conllu(root / "pos/ud_english_ewt/en_ewt-ud-train.conllu.gz")]
    if name == "conll2000":
        return [ex["tokens"] for ex in read_conll_columns(root / "pos/conll2000/train.txt")]
    if name == "imdb":
        with gzip.open(root / "sentiment/imdb/train.jsonl.gz", "rt", encoding="utf-8") as f:
            return [split_words(json.loads(line)["text"]) for line in f]
    if name == "sst2":
        return [split_words(line.split("\t")[0]) for line in read_lines(root / "sentiment/sst2/train.tsv")[1:]]
    if name == "rt_polarity":
        lines = []
        for pol in ("pos", "neg"):
            raw = (root / f"sentiment/rt_polarity/rt-polarity.{pol}").read_bytes()
            lines += raw.decode("utf-8", errors="replace").splitlines()
        return [split_words(line) for line in lines]
    if name == "dailydialog":
        return [split_words(turn) for d in read_dailydialog(root / "dialogue/dailydialog/train/dialogues_train.txt")
                for turn in d]
    if name == "multi30k":
        return [split_words(line) for line in read_lines(root / "translation/multi30k/train.en.gz")]
    raise ValueError(f"unknown source {name!r}; choose from {SOURCES}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", required=True, help="vectors file (.vec or .vec.gz)")
    p.add_argument("--method", choices=["ppmi", "sgns"], default="ppmi")
    p.add_argument("--sources", default=",".join(SOURCES), help=f"comma-separated, from {SOURCES}")
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--min-count", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3, help="sgns only")
    p.add_argument("--no-normalize", action="store_true", help="keep case and digits")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    root = data_root()
    sentences, sizes = [], {}
    for name in args.sources.split(","):
        part = corpus(name.strip(), root)
        sizes[name] = sum(len(s) for s in part)
        sentences += part
        print(f"{name}: {len(part)} sentences, {sizes[name]} tokens", file=sys.stderr)
    if not args.no_normalize:
        sentences = [[normalize_word(w) for w in s] for s in sentences]
    if args.method == "ppmi":
        words, vectors = ppmi_svd_vectors(sentences, args.dim, args.window, args.min_count)
    else:
        words, vectors = train_skipgram(sentences, args.dim, args.window, min_count=args.min_count,
                                        epochs=args.epochs)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_vectors(out, words, vectors)
    info = {"output": str(out), "method": args.method, "dim": args.dim, "window": args.window,
            "min_count": args.min_count, "normalized": not args.no_normalize, "vocabulary": len(words),
            "tokens": sum(sizes.values()), "sources": sizes,
            "command": "python recipes/word_vectors.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "commit": git_commit(), "machine": machine(), "wall_seconds": round(time.time() - t0, 1)}
    write_json(str(out) + ".json", info)
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
