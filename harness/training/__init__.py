"""Training-cost claims: the card section (`card`), FLOPs from a config (`flops`), the arithmetic
check of published GPU-hours and dollars (`check`, `harness claims --training`), and a measured
training step on this machine (`bench`, `harness bench --train`) with its reports (`report`)."""
