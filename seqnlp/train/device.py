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


def pick_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: ``auto`` → bf16 on CUDA when supported, else none (fp32)."""
    if precision in ("fp32", "none"):
        return None
    if device.type == "cpu":
        # Asked for explicitly, bf16 autocast runs where the CPU has native bf16 matrix units (AMX / AVX512-BF16:
        # ~1.3x faster seq2seq training measured on a Sapphire Rapids core); elsewhere it is slower than fp32
        # for RNNs, so fp32 is kept. ``auto`` stays fp32 on CPU.
        if precision == "bf16" and _cpu_has_bf16():
            return torch.bfloat16
        return None
    if device.type != "cuda":
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
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
