#!/usr/bin/env bash
# GPU benchmark, prepared to run unattended on a CUDA box with no network (about 5 minutes on an H100/H200):
# harness env (bandwidth, energy counter), a bench sweep on two real architectures with random weights,
# one full run with perf/energy/cost/roofline, the side-by-side overhead/timing/scaling checks, and
# the vLLM engine when it is installed. Results land in $OUT (default benchmarks/out).
#   bash benchmarks/gpu.sh                      # from the repository root
#   SMOKE=1 bash benchmarks/gpu.sh              # tiny sizes, to check the script itself on a CPU
set -uo pipefail
OUT=${OUT:-benchmarks/out}
mkdir -p "$OUT"
if [[ -d .whl ]] && ! python3 -c "import pydantic, math_verify" 2>/dev/null; then
  # wheels carried for an image that lacks them (see docs/benchmarks.md)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 HARNESS_CACHE="$OUT/cache"
PY=${PY:-python3}
if [[ -n ${SMOKE:-} ]]; then
  MODELS=(random:tiny); BS=1,2; PT=32; OT=8; RUN=(--limit 4 --batch-size 2 --max-new-tokens 16); PERF=(--model random:tiny --prompts 4 --batch-size 2 --max-new-tokens 8 --repeats 1 --scaling 1,2)
  RAGGED=(--requests 6 --min-tokens 2 --max-tokens 8 --batch-size 2)
else
  MODELS=(random:r1-distill-qwen-1.5b random:qwen2.5-7b); BS=1,8,32; PT=512; OT=128
  RAGGED=(--requests 64 --min-tokens 256 --max-tokens 4096 --batch-size 64)
  RUN=(--limit 64 --batch-size 32 --max-new-tokens 256); PERF=(--model random:r1-distill-qwen-1.5b --prompts 32 --batch-size 16 --max-new-tokens 64 --repeats 3 --scaling 1,4,8,16)
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null | tee "$OUT/gpu.txt"
$PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"
$PY -m harness env 2>&1 | tee "$OUT/env.txt"
for m in "${MODELS[@]}"; do
  name=${m#random:}
  echo "== bench $m"
  $PY -m harness bench --model "$m" --dtype bfloat16 --batch-sizes $BS --prompt-tokens $PT --output-tokens $OT --iterations 3 \
    --output "$OUT/bench-$name.json" 2>&1 | tail -n 12
done
echo "== run ${MODELS[0]}"
$PY -m harness run --model "${MODELS[0]}" "${RUN[@]}" --price-per-hour 4.29 --output-dir "$OUT/runs" --quiet 2>&1 | tail -n 6
cp "$(ls -d "$OUT"/runs/*/ | tail -n 1)run.json" "$OUT/run.json" 2>/dev/null
echo "== perf checks"
$PY benchmarks/perf.py "${PERF[@]}" --dtype bfloat16 > "$OUT/perf.json" 2> "$OUT/perf.err"; grep -E "^(overhead|timing|scaling)" "$OUT/perf.json"
echo "== batch-1 decode: eager vs compiled (static cache + torch.compile)"
for c in off on; do
  $PY -m harness bench --model "${MODELS[0]}" --dtype bfloat16 --batch-sizes 1 --prompt-tokens $PT --output-tokens $OT --iterations 3 \
    --compile $c --output "$OUT/bench1-compile-$c.json" 2>&1 | tail -n 4
done
echo "== ragged workload: continuous vs static batching, same outputs"
$PY benchmarks/ragged.py --model "${MODELS[0]}" --device auto --dtype bfloat16 "${RAGGED[@]}" > "$OUT/ragged.json" 2> "$OUT/ragged.err"
tail -n 4 "$OUT/ragged.err"; grep -E '"(continuous_over_static|identical_outputs|differing_outputs)"' "$OUT/ragged.json"
echo "== --batch-size auto: the probe's choice (batching auto)"
$PY -m harness run --model "${MODELS[0]}" "${RUN[@]}" --batch-size auto --output-dir "$OUT/runs-auto" --quiet 2>&1 | tail -n 3
$PY -c "import json, sys; e = json.load(open(sys.argv[1]))['model']['engine']; print(e.get('batch_size'), e.get('batch_size_reason')); print(e.get('batching'), e.get('batching_reason'))" \
  "$(ls -d "$OUT"/runs-auto/*/ | tail -n 1)run.json"
echo "== vllm"
if $PY -c "import vllm" 2>/dev/null; then
  # vLLM loads folders, not random: names: save the random model (weights and local tokenizer) first
  $PY -c "import sys, torch; from harness.backends.models import load
m = load(sys.argv[1], torch_dtype=torch.bfloat16, device_map='cpu'); m.model.save_pretrained(sys.argv[2]); m.tokenizer.save_pretrained(sys.argv[2])" \
    "${MODELS[0]}" "$OUT/vllm-model"
  $PY -m harness run --backend vllm --model "${VLLM_MODEL:-$OUT/vllm-model}" "${RUN[@]}" --dtype bfloat16 --output-dir "$OUT/vllm" --quiet 2>&1 | tail -n 6
  # the same folder, items and settings on transformers, then paired sample by sample (harness/diff.py)
  $PY -m harness run --model "${VLLM_MODEL:-$OUT/vllm-model}" "${RUN[@]}" --dtype bfloat16 --output-dir "$OUT/vllm-hf" --quiet 2>&1 | tail -n 6
  $PY -m harness diff "$(ls -d "$OUT"/vllm/*/ | tail -n 1)" "$(ls -d "$OUT"/vllm-hf/*/ | tail -n 1)" --output-dir "$OUT/vllm-diff" \
    --reference-dtype bfloat16 2>&1 | head -n 8
else
  echo "vllm is not installed here: skipped (pip install 'cnllm-harness[vllm]' on a CUDA box)"
fi
