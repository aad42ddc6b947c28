"""Device, precision and seeding."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import sys

import torch


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; anything else is passed to ``torch.device``."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"--device {name} asked for, but CUDA is not available on this machine")
    return dev


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_noted: set[tuple[str, str]] = set()


def pick_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The one precision policy: the autocast dtype for ``precision`` on ``device``, or None (fp32).

    Training (``train.precision``), evaluation and prediction of every task go through it; no dtype is sent
    to a kernel any other way.

    * ``fp32``: None everywhere.
    * ``auto``: bf16 on CUDA where supported, else fp16; fp32 on CPU and MPS.
    * ``bf16`` / ``fp16``: on CUDA as asked (bf16 falls back to fp16 on GPUs without it). On a CPU, bf16 runs
      where oneDNN's bf16 RNN kernels exist (:func:`cpu_supports_bf16`: AVX512-BF16 / AMX, ~1.3x faster
      seq2seq training measured on a Sapphire Rapids core); elsewhere, and for fp16 on a CPU, the run stays
      in fp32 and says so once on stderr -- oneDNN has no LSTM primitive for those dtypes there.
    """
    if precision not in PRECISIONS and precision != "none":
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    device = torch.device(device)
    if precision in ("fp32", "none"):
        return None
    if device.type == "cuda":
        if precision == "fp16" or not torch.cuda.is_bf16_supported():
            if precision == "bf16":
                _note(precision, device, "this GPU has no bf16: using fp16 autocast")
            return torch.float16
        return torch.bfloat16
    if precision == "auto":
        return None
    if device.type == "cpu" and precision == "bf16" and cpu_supports_bf16():
        return torch.bfloat16
    why = ("this CPU has no bf16 kernels for RNNs (AVX512-BF16/AMX)" if device.type == "cpu" and precision == "bf16"
           else f"{precision} is not supported for RNNs on {device.type}")
    _note(precision, device, f"{why}: running in fp32")
    return None


def _note(precision: str, device: torch.device, message: str) -> None:
    key = (precision, device.type)
    if key not in _noted:
        _noted.add(key)
        print(f"note: precision={precision} asked for, but {message}", file=sys.stderr)


_bf16_probe: bool | None = None


def cpu_supports_bf16() -> bool:
    """Whether this CPU runs a bf16 LSTM under autocast: oneDNN reports bf16 support *and* a one-step LSTM
    actually runs (checked once per process; an AVX2-only CPU fails to create the LSTM primitive)."""
    global _bf16_probe
    if _bf16_probe is None:
        _bf16_probe = _cpu_has_bf16() and _bf16_lstm_runs()
    return _bf16_probe


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _bf16_lstm_runs() -> bool:
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.LSTM(4, 4, batch_first=True)(torch.zeros(1, 2, 4))
        return True
    except RuntimeError:
        return False


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast context for mixed precision on CUDA, a no-op otherwise."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def set_threads(n: int) -> None:
    """``n > 0`` fixes torch's intra-op threads; 0 leaves torch's default."""
    if n > 0:
        torch.set_num_threads(n)


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameters (malloc.h)
_malloc_kept = False


def release_freed_memory() -> bool:
    """glibc only: hand the heap's free pages back to the system (``malloc_trim(0)``).

    A long-lived process that predicts batches of ever new shapes (``seqnlp serve``) otherwise keeps the heap at
    the high-water mark of its largest batches, and its resident size creeps up under load although nothing
    leaks. Not with :func:`keep_freed_memory` (training keeps freed memory on purpose). Returns whether it ran."""
    if _malloc_kept or not sys.platform.startswith("linux"):
        return False
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


def keep_freed_memory() -> bool:
    """glibc only: serve every allocation from the heap and keep freed memory for reuse.

    glibc hands allocations above its mmap threshold (at most 32 MiB) to ``mmap`` and returns them to the
    system on ``free``, so each large tensor of a training step (an ``(N, V)`` logits buffer is 64 MB) is
    page-faulted in afresh, every step. ``M_MMAP_MAX=0`` keeps them in the heap and a 2 GiB
    ``M_TRIM_THRESHOLD`` keeps freed memory there. Measured side by side on the real recipes
    (``benchmarks/keep_freed_memory.sh``, 2-core CPU): char LM 1.33x the characters/s, translation 1.11x
    (Bahdanau) and 1.05x (input feeding) the target tokens/s, for 0.24-0.66 GB more peak RSS; the process
    keeps its peak until it exits. Returns whether it applied (Linux with glibc, once per process);
    ``SEQNLP_KEEP_MALLOC=0`` in the environment turns it off, as does ``train.keep_freed_memory=false``.
    """
    global _malloc_kept
    if _malloc_kept:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("SEQNLP_KEEP_MALLOC") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    except (OSError, AttributeError):
        return False
    _malloc_kept = ok
    return ok


def rng_state() -> dict:
    """RNG states as tensors and plain data (loadable with ``weights_only=True``)."""
    state = {"torch": torch.get_rng_state(), "python": _py_state_to_plain(random.getstate())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_plain_to_py_state(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _py_state_to_plain(s):
    version, internal, gauss = s
    return [version, list(internal), gauss]


def _plain_to_py_state(s):
    version, internal, gauss = s
    return (version, tuple(internal), gauss)
