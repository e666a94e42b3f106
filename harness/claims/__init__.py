"""Published claims and our verdicts on them: model cards (`cards`), one-model verdicts
(`verdicts`), and claims that compare two models (`comparative`)."""
