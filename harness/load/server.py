"""A server that `harness load --serve` starts on loopback and always stops.

`ManagedServer` picks a free 127.0.0.1 port, starts llama-cpp-python's or vLLM's OpenAI-compatible
server in its own process group with its output in a log file, waits for `/v1/models` to answer
within a bounded deadline (failing at once, with the log's tail, when the process exits first), and
on exit (normal, exception, SIGINT/SIGTERM turned into an exception by the caller) sends SIGTERM to
the whole group, then SIGKILL after a grace period, so nothing is left listening.

llama-cpp-python's server defaults differ from a neutral benchmark: it interrupts an in-flight
request when the next one arrives (started with `--interrupt_requests False`, so concurrent
requests queue instead) and applies repeat_penalty 1.1 (the client sends 1.0).
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from harness.backends.vllm_setup import cpu_kv_space_gib, cuda_present
from harness.core.spec import parse as parse_spec
from harness.errors import ConfigError, ModelLoadError
from harness.load.schema import Served

ENGINES = ("llamacpp", "vllm")
STOP_GRACE_S = 10.0


def free_port() -> int:
    """A port free on 127.0.0.1 now (the OS picks it; the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def engine_version(engine: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama-cpp-python" if engine == "llamacpp" else "vllm")
    except PackageNotFoundError:
        return None


def llama_crashes(model: str) -> str | None:
    """Why llama.cpp cannot run `model` here with its default (AMX, repacked) weights, or None: the same
    probe (and cached answer) as the in-process engine's (harness.backends.llamacpp_cpu)."""
    import llama_cpp

    from harness.backends.llamacpp_cpu import extra_bufts_ok

    ok, why = extra_bufts_ok(llama_cpp, model)
    return None if ok else f"{why}: served with use_extra_bufts off (harness.load.launch)"


def command(engine: str, model: str, port: int, n_ctx: int | None, n_threads: int | None, no_extra_bufts: bool = False,
            on_cpu: bool = False, prefix_caching: bool = True) -> list[str]:
    if engine == "llamacpp":
        launcher = ["-m", "harness.load.launch", "llama_cpp.server"] if no_extra_bufts else ["-m", "llama_cpp.server"]
        cmd = [sys.executable, *launcher, "--model", model, "--host", "127.0.0.1", "--port", str(port),
               "--interrupt_requests", "False"]
        if n_ctx:
            cmd += ["--n_ctx", str(n_ctx)]
        if n_threads:
            cmd += ["--n_threads", str(n_threads)]
        return cmd
    # as the in-process engine builds it (backends/vllm.py): neutral decoding defaults, so the model's
    # generation_config.json (Qwen's top_k 20, repetition_penalty 1.05, ...) never fills in what a
    # request leaves unset; eager on CPU (graph capture and compile warm-up cost minutes on a few cores)
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--host", "127.0.0.1",
           "--port", str(port), "--generation-config", "vllm"]
    if on_cpu:
        cmd += ["--enforce-eager"]
    if not prefix_caching:  # each request prefills in full: its output cannot depend on what ran before
        cmd += ["--no-enable-prefix-caching"]
    if n_ctx:
        cmd += ["--max-model-len", str(n_ctx)]
    return cmd


def check_engine(engine: str, model: str) -> None:
    """Errors a user can fix, before anything starts."""
    if engine not in ENGINES:
        raise ConfigError(f"--serve {engine!r} is not an engine harness can start", f"use one of {', '.join(ENGINES)}")
    if not Path(model).exists():
        raise ConfigError(f"--model {model!r} does not exist", "with --serve, --model is a local path (a .gguf for llamacpp)")
    if engine == "llamacpp" and not parse_spec(str(model)).is_gguf:
        raise ConfigError(f"--serve llamacpp needs a .gguf file, got {model!r}", "pass a GGUF file, or --serve vllm for a model folder")
    import importlib.util

    module = "llama_cpp.server" if engine == "llamacpp" else "vllm"
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        extra = "llamacpp" if engine == "llamacpp" else "vllm"
        raise ConfigError(f"--serve {engine} needs {module}, which is not installed", f"pip install 'cnllm-harness[{extra}]'")


class ManagedServer:
    """`with ManagedServer(...) as srv:` -> srv.base_url; the server is stopped on leaving, always."""

    def __init__(self, engine: str, model: str, log_path: Path, *, ready_timeout_s: float = 300.0,
                 n_ctx: int | None = None, n_threads: int | None = None, prefix_caching: bool = True):
        """`prefix_caching` (vLLM): on as deployed, for load tests; off where outputs are compared."""
        check_engine(engine, model)
        self.prefix_caching = prefix_caching
        self.engine, self.model, self.log_path = engine, str(model), log_path
        self.ready_timeout_s = ready_timeout_s
        self.n_ctx, self.n_threads = n_ctx, n_threads
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.cmd: list[str] = []
        self.ready_s = 0.0
        self.exit: str | None = None
        self.note: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> ManagedServer:
        atexit.register(self.stop)  # a path out that skips __exit__ still stops it
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
        atexit.unregister(self.stop)

    def start(self) -> None:
        if self.engine == "llamacpp":
            self.note = llama_crashes(self.model)
        self.port = free_port()
        on_cpu = self.engine == "vllm" and not cuda_present()
        self.cmd = command(self.engine, self.model, self.port, self.n_ctx, self.n_threads, no_extra_bufts=self.note is not None,
                           on_cpu=on_cpu, prefix_caching=self.prefix_caching)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if on_cpu:  # the KV cache the in-process engine would size (VLLM_CPU_KVCACHE_SPACE when the user set it)
            env["VLLM_CPU_KVCACHE_SPACE"] = str(cpu_kv_space_gib()[0])
        if self.note:  # the launcher is harness code: the child must import this harness
            import harness

            root = str(Path(harness.__file__).resolve().parents[1])
            env["PYTHONPATH"] = os.pathsep.join([root, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env=env)  # its own group: one kill reaches its children
        t0 = time.perf_counter()
        deadline = t0 + self.ready_timeout_s
        while True:
            code = self.proc.poll()
            if code is not None:
                raise ModelLoadError(f"the {self.engine} server exited with code {code} before it was ready: {self.log_tail()}",
                                     f"see {self.log_path}")
            if self._healthy():
                self.ready_s = time.perf_counter() - t0
                return
            if time.perf_counter() > deadline:
                raise ModelLoadError(f"the {self.engine} server was not ready within {self.ready_timeout_s:g} s: {self.log_tail()}",
                                     f"see {self.log_path}; raise --server-timeout for a slow model")
            time.sleep(0.25)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2.0) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def died(self) -> str | None:
        """Why the server is gone, when it is (it exited on its own while harness still needed it)."""
        if self.proc is None:
            return None
        code = self.proc.poll()
        return None if code is None else f"the {self.engine} server exited with code {code} during the test"

    def log_tail(self, chars: int = 400) -> str:
        try:
            text = self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"
        return " ".join(text.split()) or "(empty log)"

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after STOP_GRACE_S; safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        code = proc.poll()
        if code is not None:
            self.exit = self.exit or f"exited with code {code}"
        else:
            self.exit = "stopped by harness"
        for sig, wait in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)  # the group: children (vLLM's engine core) too
            except (ProcessLookupError, PermissionError):
                break
            try:
                proc.wait(timeout=wait)
                if sig == signal.SIGTERM:
                    # the leader is gone; its children may linger in the group: reap them too
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                break
            except subprocess.TimeoutExpired:
                continue

    def describe(self) -> Served:
        return Served(engine=self.engine if self.engine == "vllm" else "llamacpp", command=self.cmd, model_path=self.model,
                      port=self.port, version=engine_version(self.engine), ready_s=self.ready_s,
                      log=self.log_path.name, exit=self.exit, note=self.note)
