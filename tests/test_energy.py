"""EnergyMeter with a fake powercap tree, a fake NVML, and on this real machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.measure.energy import EnergyMeter

MAX_RANGE = 262_143_328_850


def _domain(root: Path, name: str, label: str, energy_uj: int) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "name").write_text(label + "\n")
    (d / "max_energy_range_uj").write_text(f"{MAX_RANGE}\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    return d


def _set(d: Path, energy_uj: int) -> None:
    (d / "energy_uj").write_text(f"{energy_uj}\n")


@pytest.fixture
def powercap(tmp_path):
    root = tmp_path / "powercap"
    pkg0 = _domain(root, "intel-rapl:0", "package-0", MAX_RANGE - 1_000_000)  # about to wrap
    pkg1 = _domain(root, "intel-rapl:1", "package-1", 5_000_000)
    core = _domain(root, "intel-rapl:0:0", "core", 100)  # subdomain of package 0: not counted
    psys = _domain(root, "intel-rapl:2", "psys", 100)  # contains the packages: not counted
    mmio = _domain(root, "intel-rapl-mmio:0", "package-0", 100)  # same package via MMIO
    return root, pkg0, pkg1, (core, psys, mmio)


def test_rapl_sums_package_domains_across_a_wrap(powercap):
    root, pkg0, pkg1, others = powercap
    meter = EnergyMeter("cpu", rapl_root=root, poll_interval_s=None).start()
    _set(pkg0, 2_000_000)  # wrapped: 1 J to the top + 2 J after = 3 J
    _set(pkg1, 9_000_000)  # 4 J
    for d in others:
        _set(d, 10**9)  # 1 kJ each, must not appear
    r = meter.stop()
    assert r["energy_j"] == pytest.approx(7.0)
    assert "intel-rapl:0" in r["energy_source"] and "intel-rapl:1" in r["energy_source"]
    assert "intel-rapl:2" not in r["energy_source"] and "0:0" not in r["energy_source"]


def test_rapl_polling_catches_more_than_one_wrap(powercap):
    root, pkg0, pkg1, _ = powercap
    meter = EnergyMeter("cpu", rapl_root=root, poll_interval_s=None).start()
    _set(pkg0, MAX_RANGE - 2_000_000)  # nearly a full lap: (MAX - 1 J) of energy
    meter.poll()
    _set(pkg0, 1_000_000)  # wraps again: 2 J + 1 J
    r = meter.stop()
    assert r["energy_j"] == pytest.approx((MAX_RANGE - 1_000_000 + 3_000_000) / 1e6)


def test_rapl_background_poller_starts_and_stops(powercap):
    root, pkg0, _, _ = powercap
    meter = EnergyMeter("cpu", rapl_root=root, poll_interval_s=0.01).start()
    _set(pkg0, 500_000)
    r = meter.stop()
    assert r["energy_j"] == pytest.approx(1.5)
    assert meter._thread is None


def test_rapl_unreadable_gives_a_reason(tmp_path):
    r = EnergyMeter("cpu", rapl_root=tmp_path / "absent").start().stop()
    assert r["energy_j"] is None and "RAPL" in r["energy_source"] and "absent" in r["energy_source"]
    root = tmp_path / "pc"
    _domain(root, "intel-rapl:0", "psys", 1)  # only a platform domain
    r = EnergyMeter("cpu", rapl_root=root).start().stop()
    assert r["energy_j"] is None and r["energy_source"].startswith("unavailable")


def test_counter_that_did_not_move_reports_no_number(powercap):
    root, *_ = powercap
    r = EnergyMeter("cpu", rapl_root=root, poll_interval_s=None).start().stop()
    assert r["energy_j"] is None and "did not advance" in r["energy_source"]


class FakeNVMLError(Exception):
    pass


class NVMLError_LibraryNotFound(FakeNVMLError):  # noqa: N801 (pynvml's spelling)
    pass


class FakeNVML:
    """The slice of pynvml that EnergyMeter uses: per-GPU millijoule counters."""

    def __init__(self, counters: dict[int, int], uuids: dict[str, int] | None = None, fail_init=None):
        self.counters, self.uuids, self.fail_init = counters, uuids or {}, fail_init
        self.inited = self.shut = 0

    def nvmlInit(self):
        if self.fail_init:
            raise self.fail_init
        self.inited += 1

    def nvmlShutdown(self):
        self.shut += 1

    def nvmlDeviceGetCount(self):
        return len(self.counters)

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetHandleByUUID(self, uuid):
        return self.uuids[uuid]

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        return self.counters[handle]


def test_nvml_sums_the_devices_in_use():
    nvml = FakeNVML({0: 1_000, 1: 50_000, 2: 7})
    meter = EnergyMeter("cuda", [0, 1], nvml=nvml, env={}).start()
    nvml.counters.update({0: 3_500, 1: 60_000, 2: 10**9})  # GPU 2 is not ours
    r = meter.stop()
    assert r["energy_j"] == pytest.approx(12.5)
    assert r["energy_source"].startswith("nvml") and "0, 1" in r["energy_source"]
    assert nvml.inited == 1 and nvml.shut == 1


def test_nvml_maps_cuda_visible_devices():
    nvml = FakeNVML({0: 0, 1: 0, 2: 0, 3: 0}, uuids={"GPU-abc": 3})
    meter = EnergyMeter("cuda", [0, 1], nvml=nvml, env={"CUDA_VISIBLE_DEVICES": "2,GPU-abc"}).start()
    nvml.counters.update({0: 10**6, 2: 2_000, 3: 3_000})  # torch's cuda:0 is NVML GPU 2
    r = meter.stop()
    assert r["energy_j"] == pytest.approx(5.0)


def test_nvml_missing_library_gives_the_error_name():
    nvml = FakeNVML({}, fail_init=NVMLError_LibraryNotFound())
    r = EnergyMeter("cuda", [0], nvml=nvml).start().stop()
    assert r == {"energy_j": None, "energy_source": "unavailable: no NVML (NVMLError_LibraryNotFound)"}


def test_unsupported_device_type_and_unstarted_meter():
    r = EnergyMeter("mps").start().stop()
    assert r["energy_j"] is None and "mps" in r["energy_source"]
    assert EnergyMeter("cpu").stop()["energy_j"] is None


def test_this_machine_reports_none_with_a_reason():
    """This VM has no GPU and no /sys/class/powercap (see ../shared/NOTES.md)."""
    if Path("/sys/class/powercap/intel-rapl:0/energy_uj").exists():
        pytest.skip("this machine exposes RAPL")
    devices = ["cpu"] if Path("/dev/nvidiactl").exists() else ["cpu", "cuda"]
    for device in devices:
        r = EnergyMeter(device, [0] if device == "cuda" else None).start().stop()
        assert r["energy_j"] is None
        assert r["energy_source"].startswith("unavailable:") and len(r["energy_source"]) > 20
