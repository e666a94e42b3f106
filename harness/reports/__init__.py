"""What people read: report.md (`markdown`), report.html (`html`, from `templates/`), how numbers are
written (`format`), figures (`plots`), run comparisons (`compare`), the claims report (`claims`) and the
live console (`console`). Renders results; starts no run."""
