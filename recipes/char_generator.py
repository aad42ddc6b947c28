"""Char-level generator (one-to-many): train a window MLP, an Elman RNN or an LSTM on a text, sample from
it, and look inside the LSTM's gates. See ``python recipes/char_generator.py --help``.

    python recipes/char_generator.py --config recipes/configs/char_generator/tinyshakespeare.yaml
    python recipes/char_generator.py --mode predict --model runs/char_tinyshakespeare sample.seed=1 <<< "ROMEO:"
"""

import os

# OpenMP threads that spin while waiting make torch 3-10x slower when the cores are shared with other
# processes (measured here: 2 threads on 2 busy cores); passive waiting costs little on an idle machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from seqnlp.recipes.char_generator import main  # noqa: E402  (after the OpenMP setting, before torch loads)

raise SystemExit(main())
