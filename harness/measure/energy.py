"""Energy of the timed generation, from hardware energy counters only.

- NVIDIA GPUs: NVML's cumulative counter `nvmlDeviceGetTotalEnergyConsumption` (millijoules since
  the driver loaded), read at start and stop and summed over the devices in use. It counts the
  whole GPU, so other work on the same GPU is included.
- CPU: Linux RAPL through powercap, `<root>/intel-rapl:N/energy_uj` for the package domains only
  (subdomains such as `intel-rapl:0:0` are parts of a package, and `psys` contains the packages,
  so adding them would count energy twice). DRAM and GPUs are not included.

Where no counter can be read, energy_j is None and energy_source says why. Nothing is estimated
from TDP and power is never sampled: a number here was read from a counter.

The RAPL counter wraps at `max_energy_range_uj` (a few hundred kJ: tens of minutes at full
package power), so a background thread re-reads it every `poll_interval_s` seconds and counts
each wrap; reading the counter is not sampling power, it only keeps the sum exact.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RAPL_ROOT = "/sys/class/powercap"
_PACKAGE_DIR = re.compile(r"^intel-rapl:\d+$")


class _Rapl:
    """Package-domain RAPL counters, accumulated across wrap-arounds."""

    def __init__(self, root: Path):
        self.domains: list[tuple[str, Path, int]] = []
        if not root.is_dir():
            raise OSError(f"no {root}")
        for d in sorted(root.iterdir()):
            if not _PACKAGE_DIR.match(d.name):
                continue
            name_file = d / "name"
            name = name_file.read_text().strip() if name_file.exists() else "package"
            if not name.startswith("package"):
                continue  # psys (platform) contains the packages: adding it double counts
            max_range = int((d / "max_energy_range_uj").read_text())
            int((d / "energy_uj").read_text())  # raises PermissionError when not readable
            self.domains.append((d.name, d / "energy_uj", max_range))
        if not self.domains:
            raise OSError(f"no package domain under {root}")
        self.last = [int(p.read_text()) for _, p, _ in self.domains]
        self.total_uj = 0

    def read(self) -> None:
        for i, (_, path, max_range) in enumerate(self.domains):
            now = int(path.read_text())
            delta = now - self.last[i]
            if delta < 0:  # the counter wrapped past max_energy_range_uj back to 0
                delta += max_range
            self.total_uj += delta
            self.last[i] = now

    def describe(self) -> str:
        names = ", ".join(name for name, _, _ in self.domains)
        return f"rapl: CPU package counters {names} (DRAM and accelerators not included)"


def _nvml_handles(nvml, indices: Sequence[int] | None, env: dict) -> tuple[list, list[str]]:
    """NVML handles for the CUDA devices in use.

    NVML numbers GPUs ignoring CUDA_VISIBLE_DEVICES, while torch numbers the visible ones, so a
    CUDA index is mapped through that variable (indices or GPU UUIDs) first.
    """
    visible = [v.strip() for v in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if indices is None:
        indices = range(len(visible)) if visible else range(nvml.nvmlDeviceGetCount())
    handles, labels = [], []
    for i in indices:
        target = visible[i] if visible else str(i)
        if target.isdigit():
            handles.append(nvml.nvmlDeviceGetHandleByIndex(int(target)))
        else:
            handles.append(nvml.nvmlDeviceGetHandleByUUID(target))
        labels.append(target)
    return handles, labels


class EnergyMeter:
    """`meter = EnergyMeter("cuda", [0]); meter.start(); ...; meter.stop()` ->
    {"energy_j": float | None, "energy_source": str}.

    `nvml` (a pynvml-like module), `rapl_root` and `env` are injectable so tests can fake them.
    """

    def __init__(
        self,
        device_type: str,
        device_indices: Sequence[int] | None = None,
        *,
        nvml=None,
        rapl_root: str | os.PathLike = RAPL_ROOT,
        env: dict | None = None,
        poll_interval_s: float | None = 10.0,
    ):
        self.device_type = device_type
        self.device_indices = list(device_indices) if device_indices is not None else None
        self._nvml = nvml
        self._rapl_root = Path(rapl_root)
        self._env = dict(os.environ) if env is None else env
        self._poll_interval_s = poll_interval_s
        self._reason: str | None = None
        self._rapl: _Rapl | None = None
        self._gpu: tuple[Any, list, list[str], list[int]] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- start ---------------------------------------------------------------------------
    def start(self) -> EnergyMeter:
        if self.device_type == "cuda":
            self._start_nvml()
        elif self.device_type == "cpu":
            self._start_rapl()
        else:
            self._reason = f"unavailable: no energy counter is read for device type '{self.device_type}'"
        return self

    def _start_nvml(self) -> None:
        nvml: Any = self._nvml
        try:
            if nvml is None:
                import pynvml

                nvml = pynvml
            nvml.nvmlInit()
        except Exception as e:  # ImportError or NVMLError_LibraryNotFound/DriverNotLoaded, ...
            self._reason = f"unavailable: no NVML ({type(e).__name__})"
            return
        try:
            handles, labels = _nvml_handles(nvml, self.device_indices, self._env)
            first = [int(nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in handles]
        except Exception as e:  # e.g. NVMLError_NotSupported on GPUs older than Volta
            self._reason = f"unavailable: NVML energy counter not readable ({type(e).__name__})"
            _shutdown(nvml)
            return
        self._gpu = (nvml, handles, labels, first)

    def _start_rapl(self) -> None:
        try:
            self._rapl = _Rapl(self._rapl_root)
        except (OSError, ValueError) as e:
            self._reason = (
                f"unavailable: no readable RAPL package counter under {self._rapl_root} "
                f"({type(e).__name__}: {e})"
            )
            return
        if self._poll_interval_s:
            self._thread = threading.Thread(target=self._poll_loop, name="rapl-poll", daemon=True)
            self._thread.start()

    def _poll_loop(self) -> None:
        while not self._stop.wait(self._poll_interval_s):
            self.poll()

    def poll(self) -> None:
        """Re-read the RAPL counters so no wrap-around is missed (the thread calls this)."""
        if self._rapl is not None:
            with self._lock:
                try:
                    self._rapl.read()
                except OSError:
                    pass  # the final read in stop() reports a lasting failure

    # ---- stop ----------------------------------------------------------------------------
    def stop(self) -> dict:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self._gpu is not None:
            return self._stop_nvml()
        if self._rapl is not None:
            with self._lock:
                try:
                    self._rapl.read()
                except OSError as e:
                    return self._none(f"unavailable: RAPL counter unreadable at stop ({type(e).__name__})")
                return self._result(self._rapl.total_uj / 1e6, self._rapl.describe())
        return self._none(self._reason or "unavailable: meter was not started")

    def _stop_nvml(self) -> dict:
        assert self._gpu is not None  # set by _start_nvml
        nvml, handles, labels, first = self._gpu
        self._gpu = None
        try:
            last = [int(nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in handles]
        except Exception as e:
            return self._none(f"unavailable: NVML energy counter unreadable at stop ({type(e).__name__})")
        finally:
            _shutdown(nvml)
        millijoules = sum(b - a for a, b in zip(first, last))
        gpus = ", ".join(labels)
        return self._result(millijoules / 1000.0, f"nvml: total energy counter of GPU {gpus} (whole device)")

    @classmethod
    def _result(cls, joules: float, source: str) -> dict:
        # A counter that did not advance means the run was shorter than its update interval,
        # not that it took no energy: report no number rather than a false zero.
        if joules <= 0:
            return cls._none(f"unavailable: {source} did not advance during the run")
        return {"energy_j": joules, "energy_source": source}

    @staticmethod
    def _none(reason: str) -> dict:
        return {"energy_j": None, "energy_source": reason}


def _shutdown(nvml) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception:
        pass  # shutting NVML down is best-effort; the reading is already taken
