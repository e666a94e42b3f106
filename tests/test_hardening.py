"""Plans that hold (the time model, targets, the CPU dtype decision) and the papercuts of issue 25."""

from __future__ import annotations

import json

import pytest

from harness.planning import timing
from harness.planning.targets import TARGETS, estimate_target, prices_device, target


def _profile(**kw) -> timing.Profile:
    rates = timing.Rates(layer_step_s=0.01, bandwidth=2e9, flops=1e10, prefill_call_s=0.05, prefill_layer_s=0.01, prefill_flops=2e10)
    base = {"machine": "cpu X", "measured_utc": "2026-12-06T00:00:00Z", "source": "test", "speed_index_s": 0.1, "startup_s": 10.0,
            "load_fixed_s": 2.0, "load_param_s": 1e-8, "load_disk_bps": 1e9, "rates": {"bfloat16": rates, "float32": rates},
            "load_per_core": 1.0}
    return timing.Profile(**{**base, **kw})


def _job(**kw) -> timing.Job:
    base = {"arch": "a", "layers": 24, "params": 500_000_000, "weight_bytes": 1_000_000_000, "kv_per_token": 12288, "dtype": "bfloat16",
            "batch": 1, "requests": 3, "prompt_tokens": 130.0, "new_tokens": 24.0, "warmup": 1, "random_weights": True}
    return timing.Job(**{**base, **kw})


def test_physics_adds_every_phase_and_scales_with_tokens():
    p = _profile()
    short, long = timing.physics(_job(), p, p.rates["bfloat16"]), timing.physics(_job(new_tokens=48.0), p, p.rates["bfloat16"])
    assert set(short) == {"startup", "load", "warmup", "prefill", "decode"}
    assert long["decode"] == pytest.approx(2 * short["decode"], rel=0.05)
    assert short["load"] == pytest.approx(2.0 + 5.0)  # fixed + 5e8 parameters x 1e-8 s
    # a bigger batch takes fewer steps for the same requests
    assert timing.physics(_job(batch=3), p, p.rates["bfloat16"])["decode"] < short["decode"]


def test_estimate_uses_matched_earlier_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    p = _profile(machine="cpu X")
    timing.save_profile(p)
    monkeypatch.setattr(timing, "_load", lambda: 0.0)
    j = _job()
    cold = timing.estimate_cpu(j, "cpu X", load_now=0.0)
    assert cold is not None and cold.range_s[0] <= cold.expected_s <= cold.range_s[1]
    assert cold.range_s[1] / cold.range_s[0] == pytest.approx(4.0, rel=0.01)  # no run here yet: 0.5x-2x
    pred = timing.physics(j, p, p.rates["bfloat16"])
    gen = pred["warmup"] + pred["prefill"] + pred["decode"]
    rec = {"job": timing.asdict(j), "device": "cpu X", "load_per_core": 1.0, "load_runnable": 0.0, "run": "r1", "utc": "",
           "total_s": 3 * pred["startup"] + pred["load"] + 2 * gen, "load_s": pred["load"], "warmup_s": 0.0, "gen_s": 2 * gen}
    from harness.runtime.cache import write_cache

    write_cache(tmp_path / timing.RECORDS_CACHE, {"runs": [rec]})
    warm = timing.estimate_cpu(j, "cpu X", load_now=0.0)
    # the matched run's ratio (2x), shrunk toward the profile as one more run: 2 ** (1/2)
    assert warm.phases["decode"] == pytest.approx(2 ** 0.5 * pred["decode"], rel=1e-3)
    assert warm.phases["startup"] == pytest.approx(3 ** 0.5 * pred["startup"], rel=1e-3)
    assert "same architecture, dtype and batch" in warm.sources["decode"]
    # another architecture's generation does not correct this one's; its start-up still does
    other = timing.estimate_cpu(_job(arch="b"), "cpu X", load_now=0.0)
    assert other.phases["decode"] == pytest.approx(pred["decode"], rel=1e-3)
    assert other.phases["startup"] == pytest.approx(3 ** 0.5 * pred["startup"], rel=1e-3)


def test_busier_machine_plans_slower(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    timing.save_profile(_profile())
    idle = timing.estimate_cpu(_job(), "cpu X", load_now=0.0)
    busy = timing.estimate_cpu(_job(), "cpu X", load_now=3.0)
    gen = ("warmup", "prefill", "decode")
    for k in gen:  # multi-threaded generation: (1 + 3) ** 1.5 = 8x; start-up and load in proportion, 4x
        assert busy.phases[k] == pytest.approx(8 * idle.phases[k], rel=1e-2)
    assert busy.phases["startup"] == pytest.approx(4 * idle.phases["startup"], rel=1e-2)


def test_nnls_recovers_nonnegative_coefficients():
    rows = [[1.0, x, y] for x, y in ((1, 2), (2, 1), (3, 5), (4, 4), (5, 1))]
    ys = [0.5 + 2 * r[1] + 0.25 * r[2] for r in rows]
    from harness.planning.calibrate import _nnls

    assert _nnls(rows, ys) == pytest.approx([0.5, 2.0, 0.25], rel=1e-6)


def test_target_plan_prices_that_device():
    t = target("h100-sxm")
    j = _job(requests=500, new_tokens=4000.0, batch=8, dtype="bfloat16", weight_bytes=3_500_000_000, params=1_780_000_000, layers=28)
    est = estimate_target(j, t, "no such cpu")
    assert est.range_s[0] <= est.expected_s <= est.range_s[1]
    assert est.expected_s >= est.roofline_s
    assert "assumed" in est.sources["decode"]
    assert prices_device("NVIDIA H100 SXM 80GB", t.name, "cuda")
    assert not prices_device("NVIDIA H100 SXM 80GB", "Some CPU (2 logical cores)", "cpu")
    assert not prices_device("NVIDIA A100 40GB", t.name, "cuda")
    with pytest.raises(Exception, match="did you mean h100-sxm"):
        target("h100-sx")
    assert all(x.source for x in TARGETS.values())


def _measured(f32: list[float], b16: list[float]) -> dict:
    return {"layers": 24, "layers_timed": "2+4", "prompt_tokens": 32, "new_tokens": 16, "batch": 1, "repeats": 3,
            "dtypes": {"float32": {"s": 1, "tokens_per_s": sorted(f32)[1], "spread_tokens_per_s": f32},
                       "bfloat16": {"s": 1, "tokens_per_s": sorted(b16)[1], "spread_tokens_per_s": b16}}}


@pytest.mark.parametrize(("f32", "b16", "want"), [([10, 11, 12], [4, 5, 6], "float32"), ([4, 5, 6], [10, 11, 12], "bfloat16"),
                                                  ([5, 8, 11], [6, 7, 9], "bfloat16")])
def test_dtype_decided_only_beyond_the_noise(tmp_path, monkeypatch, f32, b16, want):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    from harness.planning import cpu_dtype

    dtype, reason, _ = cpu_dtype.decide({"model_type": "qwen2", "hidden_size": 8}, measure=lambda arch: _measured(f32, b16), load=0.1)
    assert dtype == want
    if want == "bfloat16" and max(f32) > min(b16):
        assert "noise" in reason


def test_dtype_probe_never_runs_unasked(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    from harness.config import make_config
    from harness.planning import cpu_dtype
    from harness.planning.targets import cpu_choice

    monkeypatch.setattr(cpu_dtype, "measure_generation", lambda arch: pytest.fail("probed without being asked"))
    dev = cpu_dtype.refine(cpu_choice("cpu", "auto"), make_config(model="random:tiny"))
    assert "--calibrate" in dev.dtype_reason and "not timed yet" in dev.dtype_reason
    assert dev.dtype == "float32"  # random:tiny: the stored profile predicts float32 faster beyond its margin


def test_mistyped_flag_is_one_line(capsys):
    from harness.cli import main

    with pytest.raises(SystemExit) as e:
        main(["run", "--taks", "gsm8k"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--tasks" in err[0]


def test_resume_of_finished_run_touches_nothing(tmp_path, capsys):
    from harness.cli import main

    assert main(["run", "--model", "fake:echo", "--limit", "2", "--output-dir", str(tmp_path / "o"), "--quiet"]) == 0
    (run,) = (tmp_path / "o").iterdir()
    body = (run / "run.json").read_bytes()
    capsys.readouterr()
    assert main(["run", "--resume", str(run)]) == 0
    assert (run / "run.json").read_bytes() == body
    assert "already complete" in capsys.readouterr().out
    assert main(["run", "--resume", str(run), "--output-dir", str(tmp_path / "y")]) == 2
    assert "--output-dir cannot be used with --resume" in capsys.readouterr().err


def test_plan_json_and_cheap_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    from harness.cli import main

    assert main(["plan", "--model", "random:tiny", "--limit", "2", "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert p["time"]["expected_s"] > 0 and len(p["time"]["range_s"]) == 2 and p["cost"]["usd"] is None and p["device"]["name"]
    assert main(["plan", "--model", "random:tiny", "--limit", "2", "--json", "--instance", "lambda-1x-h100-sxm"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert p["cost"]["usd"] is None and "not applied" in p["cost"]["price_source"]
    assert main(["run", "--model", "tiny"]) == 2
    assert "random:tiny" in capsys.readouterr().err
    assert main(["run", "--model", "random:tiny", "--tokenizer", "/nope"]) == 2
    assert "not found" in capsys.readouterr().err


def test_greedy_samples_warned_before_spending(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    from harness.cli import main

    assert main(["plan", "--model", "random:tiny", "--limit", "2", "--num-samples", "4", "--temperature", "0"]) == 0
    assert "identical" in capsys.readouterr().out


def test_progress_eta_from_tokens():
    from harness.reports.console import RunProgress
    from harness.runtime import tokens

    show = RunProgress(tty=False, quiet=True, interval=0)
    show.expected_tokens = 1000
    show.start(4)
    tokens.tick(100)
    line = show.line()
    show.close()
    assert "0/4 samples" in line and "100 tok" in line and "ETA ?" not in line


def test_a_value_from_the_config_file_is_labelled_as_such(tmp_path, capsys):
    """The plan names where each setting came from: a --config value is not a flag, and a flag beats the file."""
    from harness.cli import main

    cfg = tmp_path / "run.yaml"
    cfg.write_text("model: random:tiny\nmax_new_tokens: 12\nlimit: 1\n")
    assert main(["plan", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "max_new_tokens = 12  [--config]" in out
    assert main(["plan", "--config", str(cfg), "--max-new-tokens", "10"]) == 0
    assert "max_new_tokens = 10  [flag --max-new-tokens]" in capsys.readouterr().out


def test_resume_of_a_finished_run_still_refuses_changed_data(tmp_path, capsys):
    """A finished run's resume is a no-op only when its data and settings are what it ran on."""
    from harness.cli import main

    data = tmp_path / "d.jsonl"
    data.write_text('{"question": "What is 2 + 2?", "answer": "#### 4"}\n{"question": "What is 3 + 3?", "answer": "#### 6"}\n')
    assert main(["run", "--model", "fake:echo", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}", "--output-dir", str(tmp_path / "o"),
                 "--quiet"]) == 0
    (run_dir,) = (tmp_path / "o").iterdir()
    before = (run_dir / "run.json").read_bytes()
    assert main(["run", "--resume", str(run_dir)]) == 0 and "already complete" in capsys.readouterr().out
    data.write_text('{"question": "What is 50 + 50?", "answer": "#### 100"}\n' + data.read_text())
    assert main(["run", "--resume", str(run_dir)]) == 2
    assert "changed" in capsys.readouterr().err and (run_dir / "run.json").read_bytes() == before
