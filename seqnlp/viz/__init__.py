"""Pictures: attention heatmaps (:mod:`.attention`), LSTM gates (:mod:`.gates`), training curves
(:mod:`.curves`) and confusion matrices (:mod:`.confusion`). Each draws with matplotlib's Agg backend into a
file and imports matplotlib only when called."""
