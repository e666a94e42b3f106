"""Build step: ship model_cards/ (the editable source of the cards) inside the wheel as
harness/model_cards, where harness/cards/loader.py finds them once installed. Everything else
about the package is declared in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CARDS = Path(__file__).resolve().parent / "model_cards"


class BuildWithCards(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "harness" / "model_cards"
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(CARDS.glob("*.yaml")) + [CARDS / "README.md"]:
            shutil.copyfile(path, target / path.name)


setup(cmdclass={"build_py": BuildWithCards})
