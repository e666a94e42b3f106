"""Serving load tests (`harness load`): how a served model holds up under concurrent load.

Modules, in the order a test uses them:
- cli: the flags; run: the one readable path (check -> folder -> server -> prompts -> warm-up ->
  levels -> summary -> load.json and report);
- server: starts llama.cpp's or vLLM's server on loopback and always stops it;
- prompts: task or synthetic prompts and the request body; client: streamed requests, closed or
  open loop, every loop bounded; arrivals: open-loop schedules;
- metrics: vLLM's TTFT/TPOT/ITL/E2EL, throughput, goodput, spread, saturation (pure);
- economics: $ per 1M output tokens at the saturation point against API prices, energy;
- schema: the typed, versioned load.json and request records; folder: durable writing;
- report: the HTML report; compare: two load folders side by side.

Nothing is imported here, so `harness --help` stays instant.
"""
