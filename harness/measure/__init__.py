"""What a run measures besides accuracy: time (`timing`), energy, memory, the bandwidth roofline and
dollar cost. Pure measurement; the `harness bench` sweep is `harness.orchestration.bench`."""
