"""Part-of-speech tagging (synchronized many-to-many): char + word features, BiLSTM, softmax or CRF;
or the lecture's fixed-window tagger.

    python recipes/pos_tagging.py --config recipes/configs/pos_tagging/ud_ewt.yaml
    python recipes/pos_tagging.py --config recipes/configs/pos_tagging/conll2000.yaml model.encoder=window
    echo "I saw her duck ." | seqnlp predict --model runs/pos_ud_ewt

Run with --help for every config key; the training script is seqnlp/recipes/pos_tagging.py, the task
(predictor, evaluation, ensembles) seqnlp/tasks/pos_tagging.py.
"""

import os

# OpenMP threads that spin while waiting turn a busy 2-core machine into a 20x slowdown; sleeping
# waiters cost a few percent when the machine is idle. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from seqnlp.recipes.pos_tagging import main  # noqa: E402

raise SystemExit(main())
