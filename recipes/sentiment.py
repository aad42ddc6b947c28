"""Sentiment classification (many-to-one) on SST-2, IMDB and Rotten Tomatoes, with fine-tuning and LM pretraining.

    python recipes/sentiment.py --config recipes/configs/sentiment/sst2.yaml [key.sub=value ...]
    python recipes/sentiment.py --help        # every config key with its default

The implementation is :mod:`seqnlp.recipes.sentiment`; ``seqnlp train|evaluate|predict`` dispatch to it too.
"""

from seqnlp.recipes.sentiment import main

if __name__ == "__main__":
    raise SystemExit(main())
