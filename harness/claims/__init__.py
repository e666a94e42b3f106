"""Published claims and our verdicts on them: the model-card schema (`card_schema`) and files
(`cards`), what a card implies for a run (`differences`), one-model verdicts (`verdicts`), and
claims that compare two models: their file (`comparisons`), the checks (`comparative`) and the
report (`comparative_report`)."""
