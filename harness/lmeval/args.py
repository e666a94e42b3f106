"""Arguments of the lm-eval "harness" model: its model_args keys, lm-eval's generation kwargs as our
`Sampling`, and the values lm-eval's "k=v" parser hands over (digits as numbers, "true" as a bool)
checked into one-line errors. No lm-eval import: the model module (model.py) does that.
"""

from __future__ import annotations

import logging

from harness.core.types import Sampling
from harness.errors import ConfigError

log = logging.getLogger(__name__)

TIMINGS_ENV = "HARNESS_LMEVAL_TIMINGS"
LM_EVAL_CLI_DEVICE = "cuda:0"  # what lm-eval's CLI passes when no --device is given
DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's own default for generate_until (HFLM, vLLM)

# model_args keys passed straight to RunConfig (same names as `harness run` flags).
CONFIG_KEYS = ("model", "backend", "revision", "tokenizer", "device", "dtype", "seed", "trust_remote_code", "allow_pickle",
                "device_map", "base_url", "api_key_env", "max_concurrency", "tensor_parallel_size")
TEXT_KEYS = ("model", "backend", "revision", "tokenizer", "device", "dtype", "device_map", "base_url", "api_key_env")
OWN_KEYS = ("pretrained", "batch_size", "max_batch_size", "max_new_tokens", "max_gen_toks", "think_end_token", "enable_thinking",
             "timings", "max_length")
GEN_KEYS = {"until", "max_gen_toks", "max_new_tokens", "do_sample", "temperature", "top_p", "top_k"}


def sampling_from_gen_kwargs(gen_kwargs: dict, default_max: int) -> tuple[Sampling, list[str], list[str]]:
    """(Sampling, stop strings, ignored keys) for one lm-eval request's generation kwargs.

    do_sample False means greedy whatever the temperature; do_sample True with no positive
    temperature samples at 1.0 (as transformers does); do_sample absent samples when the
    temperature is positive (as vLLM does)."""
    kw = dict(gen_kwargs or {})
    until = kw.pop("until", None)
    stops = [until] if isinstance(until, str) else [s for s in (until or []) if s]
    try:
        max_gen, alias = kw.pop("max_gen_toks", None), kw.pop("max_new_tokens", None)
        max_new = int(max_gen if max_gen is not None else alias if alias is not None else default_max)
        do_sample = kw.pop("do_sample", None)
        temperature = _number(kw.pop("temperature", None), 0.0, float)
        top_p = _number(kw.pop("top_p", None), 1.0, float)
        top_k = _number(kw.pop("top_k", None), 0, int)
    except (TypeError, ValueError):
        raise ConfigError(f"invalid generation kwargs {gen_kwargs!r}", "numbers for max_gen_toks, temperature, top_p, top_k") from None
    if do_sample is False:
        temperature = 0.0
    elif do_sample is True and temperature <= 0:
        temperature = 1.0
    if max_new <= 0 or temperature < 0 or not 0 < top_p <= 1 or top_k < 0:
        raise ConfigError(f"invalid generation kwargs {gen_kwargs!r}",
                          "max_gen_toks > 0, temperature >= 0, 0 < top_p <= 1 and top_k >= 0")
    sampling = Sampling(max_new_tokens=max_new, temperature=temperature, top_p=top_p if temperature > 0 else 1.0,
                        top_k=top_k if temperature > 0 else 0, stop=tuple(stops))
    return sampling, stops, sorted(kw)


def _number(value, default, kind):
    return default if value is None else kind(value)


def parse_batch_size(value) -> int | str:
    """lm-eval gives 1, "8", "auto" or "auto:4"; we take an int or "auto" (which halves on out-of-memory)."""
    text = str(value).strip().lower()
    if text.startswith("auto"):
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"batch_size={value!r} is not a number or auto", "e.g. batch_size=8") from None


def positive_int(key: str, value) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number <= 0 or str(number) != str(value).strip():
        raise ConfigError(f"{key}={value!r} is not a positive whole number", f"e.g. {key}=2048")
    return number


def parse_flag(key: str, value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false", "1", "0"):
        raise ConfigError(f"{key}={value!r} is not true or false", f"e.g. {key}=true")
    return text in ("true", "1")


def resolve_device(device: str, dtype: str):
    """harness.runtime.device.resolve, except that lm-eval's CLI default ("cuda:0", sent even when the user
    named no device) falls back to auto where CUDA is absent, as lm-eval's own HF model does."""
    from harness.errors import DeviceError
    from harness.runtime.device import resolve

    try:
        return resolve(device, dtype)
    except DeviceError:
        if device != LM_EVAL_CLI_DEVICE:
            raise
        log.warning("harness model: lm-eval's default device cuda:0 is not available; choosing automatically")
        return resolve("auto", dtype)
