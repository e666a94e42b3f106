"""What people read: report.md (`markdown`), report.html (`html`, from `templates/`), how numbers
are written (`format`), figures (`plots`), run comparisons (`compare`), thinking-budget curves
(`budgets`), and the live console (`console`)."""
