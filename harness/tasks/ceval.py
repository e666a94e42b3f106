"""C-Eval: Chinese multiple-choice exam questions in 52 subjects, from middle school to professional
qualification exams, grouped as STEM, Social Science, Humanities and Other.

- dataset: ceval/ceval-exam, one config per subject, split `val` (1,346 questions over all subjects).
           The `test` split has no public answers (scores come from the leaderboard) and `dev` is
           the five few-shot examples per subject, so `val` is the split a local run can score.
- option:  subject = "all" (default) | a category ("stem", "social_science", "humanities", "other")
           | one or more subject configs, comma-separated (e.g. "high_school_mathematics,logic")
- paper:   Huang et al. 2023, "C-Eval: A Multi-Level Multi-Discipline Chinese Evaluation Suite
           for Foundation Models", arXiv 2305.08322
- license: CC BY-NC-SA 4.0
- rows:    `id`, `question`, `A`, `B`, `C`, `D`, `answer` (a letter); rows read from the Hub get
           a `subject` field added, and a local file may carry one too
- target:  `answer`
- id:      "<subject>/<id>" (ids restart at 0 in every subject); just `id` when a local file's rows
           carry no subject and the option names more than one
- meta:    subject and its category; the category is the level field, so reports break accuracy
           down by STEM / Social Science / Humanities / Other
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.errors import DataError
from harness.tasks.base import Item, Task, load_hub_dataset
from harness.tasks.options import check_options

_CATEGORIES = {
    "STEM": "computer_network operating_system computer_architecture college_programming college_physics "
            "college_chemistry advanced_mathematics probability_and_statistics discrete_mathematics "
            "electrical_engineer metrology_engineer high_school_mathematics high_school_physics "
            "high_school_chemistry high_school_biology middle_school_mathematics middle_school_biology "
            "middle_school_physics middle_school_chemistry veterinary_medicine",
    "Social Science": "college_economics business_administration marxism mao_zedong_thought education_science "
                      "teacher_qualification high_school_politics high_school_geography middle_school_politics "
                      "middle_school_geography",
    "Humanities": "modern_chinese_history ideological_and_moral_cultivation logic law chinese_language_and_literature "
                  "art_studies professional_tour_guide legal_professional high_school_chinese high_school_history "
                  "middle_school_history",
    "Other": "civil_servant sports_science plant_protection basic_medicine clinical_medicine urban_and_rural_planner "
             "accountant fire_engineer environmental_impact_assessment_engineer tax_accountant physician",
}
CATEGORY: dict[str, str] = {s: cat for cat, names in _CATEGORIES.items() for s in names.split()}
SUBJECTS: tuple[str, ...] = tuple(CATEGORY)  # 52 subjects, category by category


def parse_subjects(value) -> tuple[str, ...]:
    """"all", a category name, or a comma-separated list of subject configs."""
    text = str(value).strip().lower()
    if text == "all":
        return SUBJECTS
    for cat in _CATEGORIES:
        if text == cat.lower().replace(" ", "_"):
            return tuple(s for s in SUBJECTS if CATEGORY[s] == cat)
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in names if s not in CATEGORY]
    if unknown or not names:
        raise ValueError(f"unknown subject(s) {', '.join(unknown) or '(none)'}; use all, stem, social_science, "
                         f"humanities, other, or subject configs such as high_school_mathematics")
    return names


class CEval(Task):
    name = "ceval"
    size = 1346
    title = "C-Eval (Chinese exams, 52 subjects)"
    dataset = "ceval/ceval-exam"
    split = "val"
    paper = "arXiv:2305.08322"
    license = "CC BY-NC-SA 4.0"
    answer_type = "choice"
    required_fields = ("id", "question", "A", "B", "C", "D", "answer")
    levels_field = "category"
    narrowing_options = ("subject",)

    def __init__(self, **options: Any) -> None:
        opts = check_options(self.name, options, {"subject": parse_subjects})
        super().__init__(**opts)
        self.subjects: tuple[str, ...] = opts.get("subject", SUBJECTS)

    def describe(self) -> str:
        which = "all 52 subjects" if self.subjects == SUBJECTS else ", ".join(self.subjects)
        return f"{self.dataset} (split {self.split}; {which})"

    def hub_rows(self) -> Iterable[tuple[str, dict]]:
        # Lazily, subject by subject, so --limit stops downloading once it has enough rows.
        for subject in self.subjects:
            rows = load_hub_dataset(self.dataset, subject, self.split, gated=self.gated, task=self.name)
            for i, row in enumerate(rows):
                yield f"{self.dataset}/{subject}[{i}]", {**dict(row), "subject": subject}

    def parse(self, row: dict, index: int) -> Item:
        answer = str(row["answer"]).strip().upper()
        if answer not in ("A", "B", "C", "D"):
            raise DataError(f"task ceval: row {index} answer {row['answer']!r} is not A, B, C or D",
                            "use the ceval/ceval-exam val split (the test split has no answers)")
        subject = row.get("subject") or (self.subjects[0] if len(self.subjects) == 1 else None)
        meta = {"subject": subject, "category": CATEGORY.get(subject, "unknown")} if subject else {}
        item_id = f"{subject}/{row['id']}" if subject else str(row["id"])
        return Item(id=item_id, question=str(row["question"]).strip(), target=answer,
                    choices=tuple(str(row[k]).strip() for k in "ABCD"), meta=meta)
