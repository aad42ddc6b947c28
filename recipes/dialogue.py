"""Train, evaluate and talk to a seq2seq dialogue model (the last k turns in, the next turn out).

    python recipes/dialogue.py --config recipes/configs/dialogue/dailydialog.yaml
    python recipes/dialogue.py --mode evaluate --model runs/dailydialog
    python recipes/dialogue.py --mode chat --model runs/dailydialog        # or: seqnlp chat --model ...

See ``seqnlp/recipes/dialogue.py`` (``--help`` lists every config key).
"""

from seqnlp.recipes.dialogue import main

raise SystemExit(main())
