"""Where and how precisely a run computes: the device, float precision, and its timers.

Every branch that only a GPU takes is here or says so, so that tests can force it on a
CPU (docs/performance.md lists them).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import time

import torch

from stabgap.errors import StabgapError, did_you_mean


@functools.cache
def keep_freed_memory() -> bool:
    """Have glibc's malloc keep the memory a process frees, to reuse it (Linux; once).

    glibc gives every block over 32 MB its own mapping and returns it to the kernel when
    freed. A paper run's evaluation makes such blocks at every batch (the hidden
    activations of 9,216 test images: 38 MB each), so the kernel maps and zeroes them
    afresh, page by page: 15,000 page faults and 7 % of each evaluation on our 2-core
    CPU (docs/performance.md). Served from malloc's heap and kept there once freed, the
    same memory is reused instead. The process then keeps the most it ever held until it
    exits: the CLI's and a sweep's workers exit after training, but a notebook or other
    long-lived process that trains through the Python API keeps it (up to 2 GB of freed
    memory beyond what it uses). True if malloc took the settings.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # another C library (musl): leave it as it is
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # from glibc's malloc.h
    # No block gets its own mapping, and the heap's free top is trimmed only past 2 GB.
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 2**31 - 1))


def memory_bytes(device: torch.device) -> int | None:
    """The device's whole memory (a CPU's: the machine's RAM), or None where unknown."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no such names here (Windows)
        return None


def runnable() -> int | None:
    """Threads on this machine running or ready to run now, this one among them (Linux's
    procs_running; None elsewhere): more than the cores, and they take turns."""
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("procs_running "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def resolve_device(name: str) -> torch.device:
    """'auto' → CUDA when present; anything unusable is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(name, str) or not name.strip():
        raise StabgapError("device must be cpu, cuda, cuda:N or auto")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise StabgapError(
            f"unknown device '{name}'{did_you_mean(name, ('cpu', 'cuda', 'auto'))}: use cpu, "
            "cuda, cuda:N or auto"
        ) from None
    if device.type not in ("cpu", "cuda"):
        raise StabgapError(f"device '{name}' is not supported: use cpu, cuda, cuda:N or auto")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise StabgapError(f"device '{name}' asked for, but CUDA is not available: use cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise StabgapError(
            f"device '{name}' asked for, but there are only {torch.cuda.device_count()} GPUs"
        )
    return device


def device_reason(name: str, device: torch.device) -> str:
    """Why a run ran where it did, for its record."""
    if name != "auto":
        return f"asked for {name}"
    return "auto: a CUDA GPU is present" if device.type == "cuda" else "auto: no CUDA GPU, so CPU"


def precision_context(precision: str, device: torch.device):
    """A context for each forward (and backward) pass that gives exactly `precision`.

    bf16 is autocast, entered per pass, never around the whole loop: autocast caches
    the low-precision copies of the weights until its context exits, so a loop-wide
    context would keep computing with the weights of the first step. On a GPU, fp32 and
    tf32 set torch's float32 matmul (and convolution) precision for the pass and put
    back what was there, so a run is fp32 when it says fp32 whatever the process had
    switched on. A CPU has no TF32: there tf32 computes in fp32, like fp32.
    """
    if precision == "bf16":
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if device.type != "cuda":
        return contextlib.nullcontext
    return lambda: cuda_matmul_precision("tf32" if precision == "tf32" else "ieee")


def autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype autocast computes in on `device_type` now (bf16 for a bf16 pass), or None
    when autocast is off there."""
    try:  # torch >= 2.4 takes a device type
        if not torch.is_autocast_enabled(device_type):
            return None
        return torch.get_autocast_dtype(device_type)
    except (TypeError, AttributeError):
        if device_type == "cpu":
            return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None
        return torch.get_autocast_gpu_dtype() if torch.is_autocast_enabled() else None


@contextlib.contextmanager
def cuda_matmul_precision(mode: str):
    """CUDA float32 matmuls and convolutions in `mode` ('ieee' or 'tf32'), then as before.

    Uses torch's ``fp32_precision`` settings where they exist (torch >= 2.9; reading the
    older ``allow_tf32`` flags there raises once the new ones are used) and the
    ``allow_tf32`` flags on older versions.
    """
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    if hasattr(matmul, "fp32_precision"):
        before = (matmul.fp32_precision, conv.fp32_precision)
        matmul.fp32_precision = conv.fp32_precision = mode
        try:
            yield
        finally:
            matmul.fp32_precision, conv.fp32_precision = before
        return
    before = (matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode == "tf32"
    try:
        yield
    finally:
        matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


class Stopwatch:
    """Time spent in named sections; CUDA events on a GPU so that nothing synchronises.

    Args:
        device: the run's device; on CUDA, sections are timed by events recorded in its
            stream and read once, at the end (reading them after each batch would wait
            for the GPU).
        event: the event class to time with (default: torch.cuda.Event on CUDA, none
            on a CPU, which uses the wall clock); tests pass a stand-in to run the GPU
            branch on a CPU.
    """

    def __init__(self, device: torch.device, event=None) -> None:
        self.event = event or (torch.cuda.Event if device.type == "cuda" else None)
        self.seconds: dict[str, float] = {}
        self.events: dict[str, list] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        if self.event is not None:
            start, end = (self.event(enable_timing=True) for _ in range(2))
            start.record()
            yield
            end.record()
            self.events.setdefault(name, []).append((start, end))
        else:
            t0 = time.perf_counter()
            yield
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

    def totals(self) -> dict[str, float]:
        """Seconds per section (on CUDA: after one synchronisation, here)."""
        if self.events:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            for name, pairs in self.events.items():
                self.seconds[name] = sum(s.elapsed_time(e) for s, e in pairs) / 1000
            self.events.clear()
        return dict(self.seconds)
