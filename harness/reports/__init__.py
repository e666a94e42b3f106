"""What people read: report.md (`markdown`), report.html (`html`), figures (`plots`), run
comparisons (`compare`), thinking-budget curves (`budgets`), and the live console (`console`)."""
