"""keep_freed_memory: glibc keeps large freed blocks in the heap (no mmap/munmap per tensor)."""

import ctypes
import subprocess
import sys

import pytest

from seqnlp.train.device import keep_freed_memory

GLIBC = sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "mallinfo2")  # glibc >= 2.33

SCRIPT = """
import ctypes, torch
from seqnlp.train.device import keep_freed_memory
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def mmapped_after_big_alloc():
    class Mallinfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]
    libc.mallinfo2.restype = Mallinfo2
    p = libc.malloc(64 << 20)
    hblkhd = libc.mallinfo2().hblkhd  # bytes in mmap'd blocks
    libc.free(p)
    return hblkhd
before = mmapped_after_big_alloc()
assert keep_freed_memory() and keep_freed_memory()  # applies, and a second call is a no-op
after = mmapped_after_big_alloc()
print(before >= 64 << 20, after < 64 << 20)
"""


@pytest.mark.skipif(not GLIBC, reason="needs glibc >= 2.33 (mallinfo2)")
def test_large_blocks_come_from_the_heap_after_keep_freed_memory():
    # a fresh process: the setting is process-wide and the test session's trainers have already applied it
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]


def test_opt_out_by_environment(monkeypatch):
    import seqnlp.train.device as device

    monkeypatch.setattr(device, "_malloc_kept", False)
    monkeypatch.setenv("SEQNLP_KEEP_MALLOC", "0")
    assert keep_freed_memory() is False


def test_release_freed_memory_trims_the_heap_unless_training_keeps_it(monkeypatch):
    import sys

    from seqnlp.train import device

    monkeypatch.setattr(device, "_malloc_kept", False)
    assert device.release_freed_memory() is sys.platform.startswith("linux")  # glibc's malloc_trim ran
    monkeypatch.setattr(device, "_malloc_kept", True)  # keep_freed_memory() applied: training keeps it on purpose
    assert device.release_freed_memory() is False
