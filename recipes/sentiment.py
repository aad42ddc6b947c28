"""Sentiment classification (many-to-one) on SST-2, IMDB and Rotten Tomatoes, with fine-tuning, LM pretraining,
distillation and adversarial training.

    python recipes/sentiment.py --config recipes/configs/sentiment/sst2.yaml [key.sub=value ...]
    python recipes/sentiment.py --help        # every config key with its default

The training script is :mod:`seqnlp.recipes.sentiment`, the task (model, predictor, evaluation)
:mod:`seqnlp.tasks.sentiment`; ``seqnlp train|evaluate|predict|ensemble`` reach them too.
"""

from seqnlp.recipes.sentiment import main

if __name__ == "__main__":
    raise SystemExit(main())
