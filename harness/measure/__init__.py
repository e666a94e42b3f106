"""What a run measures besides accuracy: time (`timing`), energy, memory, the bandwidth roofline,
dollar cost, and the `harness bench` sweep."""
