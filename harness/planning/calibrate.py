"""`harness plan --calibrate`: measure this CPU for the time model (planning/timing.py): imports in a
fresh interpreter, a random model's load, generation of random models at two depths and two batch
sizes in each dtype (fitted by non-negative least squares into the profile's constants), and one
whole smoke run in a fresh process for what only a real run measures (tokenizer load, scoring,
reports). The profile is cached per CPU.
"""

from __future__ import annotations

import time
from pathlib import Path

from harness.planning.timing import Profile, Rates, _load, job_for, save_profile, speed_index

CAL_PROMPT, CAL_NEW = 24, 6


def calibrate(device_name: str, dtypes: tuple[str, ...] = ("bfloat16", "float32"), say=print) -> Profile:
    """Measure this CPU: imports in a fresh interpreter, a random model's load, and generation of random
    models at two depths and two batch sizes in each dtype; fit the constants and cache them."""
    import subprocess
    import sys

    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    from harness.backends.models import arch_dict, hf_config, random_config

    load0 = _load()
    say("calibrating: imports in a fresh interpreter ...")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, transformers, transformers.generation"], check=False, timeout=300)
    imports = time.perf_counter() - t0
    index = speed_index()
    points: dict[str, list[tuple[list[float], float, list[float], float]]] = {d: [] for d in dtypes}
    load_pts = []
    archs = [("tiny", random_config("tiny"), 2), ("qwen2.5-0.5b-instruct", random_config("qwen2.5-0.5b-instruct"), 1),
             ("qwen2.5-0.5b-instruct", random_config("qwen2.5-0.5b-instruct"), 3)]
    for name, raw, layers in archs:
        say(f"calibrating: {name} at {layers} layer(s) ...")
        from harness.core.architecture import count_parameters

        cut = arch_dict(raw, layers)
        params = count_parameters(cut) or 0
        torch.manual_seed(0)
        t0 = time.perf_counter()
        model = AutoModelForCausalLM.from_config(hf_config(cut), dtype=torch.float32).eval()
        load_pts.append((params, time.perf_counter() - t0))
        vocab = min(hf_config(cut).get_text_config().vocab_size, 700)
        for dtype in dtypes:
            model = model.to(getattr(torch, dtype))
            j = job_for({"config": cut, "params": params}, dtype, 1, 1, CAL_PROMPT, CAL_NEW, 0, True, "transformers")
            assert j is not None
            for batch in (1, 4):
                ids = torch.randint(3, vocab, (batch, CAL_PROMPT))

                def gen(n: int, model=model, ids=ids) -> float:
                    cfg = GenerationConfig(max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0, eos_token_id=None)
                    t = time.perf_counter()
                    with torch.inference_mode():
                        model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=cfg)
                    return time.perf_counter() - t

                gen(2)  # warm
                one = min(gen(1), gen(1))
                full = gen(CAL_NEW + 1)
                step = max((full - one) / CAL_NEW, 1e-6)
                ctx = CAL_PROMPT + CAL_NEW / 2
                read = j.weight_bytes + j.kv_per_token * ctx * batch
                points[dtype].append(([j.layers, read, batch * j.flops_per_token], step,
                                      [1.0, j.layers, batch * CAL_PROMPT * j.flops_per_token], one))
        del model
    rates = {}
    for dtype, rows in points.items():
        s = _nnls([r[0] for r in rows], [r[1] for r in rows])
        q = _nnls([r[2] for r in rows], [r[3] for r in rows])
        rates[dtype] = Rates(s[0], 1 / s[1] if s[1] > 0 else 1e12, 1 / s[2] if s[2] > 0 else 1e15, q[0], q[1],
                             1 / q[2] if q[2] > 0 else 1e15)
    lp = _nnls([[1.0, n] for n, _ in load_pts], [t for _, t in load_pts])
    prof = Profile(device_name, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "harness plan --calibrate", index,
                   startup_s=imports, load_fixed_s=lp[0], load_param_s=lp[1], load_disk_bps=1e9, rates=rates, load_per_core=(load0 + _load()) / 2)
    _whole_run(prof, say)
    save_profile(prof)
    return prof


def _whole_run(prof: Profile, say) -> None:
    """What only a real run measures (the tokenizer's load, planning, scoring, reports): a smoke run of
    random:tiny in a fresh process; its start-up and the fixed part of its load go into the profile."""
    import subprocess
    import sys
    import tempfile

    from harness.results.store import load_run

    say("calibrating: a whole run of random:tiny in a fresh process ...")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "harness", "run", "--model", "random:tiny", "--limit", "2", "--max-new-tokens", "4",
                               "--quiet", "--dtype", "float32", "--output-dir", tmp], capture_output=True, text=True, timeout=600, check=False)
        total = time.perf_counter() - t0
        runs = list(Path(tmp).glob("*/run.json"))
        if done.returncode != 0 or not runs:
            say(f"calibrating: the smoke run failed ({done.stderr.strip()[-200:]}); start-up stays at the import time")
            return
        run = load_run(runs[0].parent)
    perf = run.perf
    if perf is None:
        return
    warm = getattr(perf.warmup, "s", 0.0) or 0.0
    prof.startup_s = max(prof.startup_s, total - float(perf.load_s or 0) - float(warm or 0) - float(perf.wall_s or 0))
    prof.load_fixed_s = max(prof.load_fixed_s, float(perf.load_s or 0) - (run.model.num_parameters or 0) * prof.load_param_s)


def _nnls(rows: list[list[float]], ys: list[float]) -> list[float]:
    """Non-negative least squares on relative error, by trying every subset of columns (few columns)."""
    import itertools

    import numpy as np

    a = np.array(rows, dtype=float)
    y = np.array(ys, dtype=float)
    w = 1.0 / np.maximum(y, 1e-9)
    best, best_err = [0.0] * a.shape[1], float("inf")
    for k in range(1, a.shape[1] + 1):
        for cols in itertools.combinations(range(a.shape[1]), k):
            sub = a[:, cols] * w[:, None]
            coef, *_ = np.linalg.lstsq(sub, y * w, rcond=None)
            if (coef < 0).any():
                continue
            err = float(np.sum((sub @ coef - y * w) ** 2))
            if err < best_err:
                full = [0.0] * a.shape[1]
                for c, v in zip(cols, coef):
                    full[c] = float(v)
                best, best_err = full, err
    return best


__all__ = ["calibrate"]
