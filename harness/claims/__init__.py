"""Our verdicts on published claims: one-model verdicts (`verdicts`), what makes a run comparable with a
claim (`comparability`), and claims that compare two models (`comparative`). The cards and comparison
files these read are `harness.cards`."""
