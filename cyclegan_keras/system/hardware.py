"""What the machine offers, read from the operating system: the processor's instructions (to warn about
a precision that is emulated rather than run) and the memory free for a budget."""

from __future__ import annotations

import ctypes
import os
import re
import warnings

from cyclegan_keras.errors import UsageError

# Instructions that compute in bfloat16: AVX-512 BF16 (Cooper Lake, Zen 4 and later), AMX (Sapphire
# Rapids), and on Arm the BF16 extension.
BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_flags() -> frozenset[str] | None:
    """The CPU's feature flags (``/proc/cpuinfo``; Linux), or None where they cannot be read."""
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def check_precision(precision: str, accelerators: list[str]) -> None:
    """Warns once when ``precision`` would be emulated here: bfloat16 on a CPU without bfloat16
    instructions, float16 without a GPU. ``accelerators``: the GPUs or TPUs training runs on."""
    if accelerators or precision == "float32":
        return
    if precision == "mixed_bfloat16":
        flags = cpu_flags()
        if flags is not None and not flags & BFLOAT16_FLAGS:
            warnings.warn(
                "--precision mixed_bfloat16 on a CPU without bfloat16 instructions (no avx512_bf16 or "
                "amx_bf16): bfloat16 is emulated, and a 128 px step measured 10.5x slower than float32 "
                "(53.5 s against 5.1 s on an AVX2 EPYC). Use --precision float32 here.",
                UserWarning,
                stacklevel=3,
            )
    elif precision == "mixed_float16":
        warnings.warn(
            "--precision mixed_float16 without a GPU: CPUs have no fast float16 arithmetic, so it is "
            "emulated, and a 64 px step measured 4.7x slower than float32 (5.3 s against 1.1 s on a Zen 4 "
            "EPYC). Use float32, or mixed_bfloat16 on a CPU with bfloat16 instructions.",
            UserWarning,
            stacklevel=3,
        )


def available_memory() -> int:
    """Bytes of memory the system can give a process now (``MemAvailable`` on Linux; elsewhere the
    physical memory), for budgets that should leave room for everything else running."""
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def resident_memory() -> int:
    """Bytes of memory this process holds now (``/proc/self/statm``; 0 where it cannot be read)."""
    try:
        with open("/proc/self/statm") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def release_free_memory() -> None:
    """Give the pages that freed allocations leave inside the C heap back to the system (glibc's
    ``malloc_trim``; nothing where the C library has none). glibc keeps freed blocks below its moving
    mmap threshold (up to 32 MiB) in the heap, and one block still held above them pins them all: after
    PyTorch's functions are built (kernels transformed through temporaries) that was 150-250 MB."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def memory_size(text: str | int) -> int:
    """A size in bytes from ``3G``, ``500M``, ``1.5GB``, ``2GiB`` or a plain number of bytes.

    Raises:
        UsageError: anything else, or a size that is not positive.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", str(text))
        if not match:
            raise UsageError(f"Cannot read {text!r} as a memory size: write it as 3G, 500M or 1.5GB.")
        value = int(float(match[1]) * _UNITS[match[2].upper()])
    if value <= 0:
        raise UsageError(f"A memory size must be positive, got {text!r}.")
    return value


def size_text(size: int) -> str:
    """Bytes for people: ``1.5 GB`` or ``300 MB``."""
    return f"{size / 2**30:.1f} GB" if size >= 2**30 else f"{size / 2**20:.0f} MB"
