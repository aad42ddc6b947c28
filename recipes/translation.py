"""Train, evaluate and run a seq2seq translation model (BiLSTM encoder, attention LSTM decoder).

    python recipes/translation.py --config recipes/configs/translation/multi30k_de_en.yaml
    python recipes/translation.py --mode evaluate --model runs/multi30k_de_en
    echo "Zwei Hunde spielen im Schnee." | python recipes/translation.py --mode predict --model runs/multi30k_de_en

See ``seqnlp/recipes/translation.py`` (``--help`` lists every config key).
"""

from seqnlp.recipes.translation import main

raise SystemExit(main())
