"""Start-up and progress lines that native runtimes write straight to the process's stderr.

TensorFlow's C++ start-up lines ("Could not find cuda drivers ... GPU will not be used", absl's "All
log messages before absl::InitializeLog() is called are written to STDERR"), LiteRT's "INFO: Created
TensorFlow Lite XNNPACK delegate for CPU." and the converter's "fully_quantize: ..." read like errors
and bury a command's own output. They bypass Python and print before any threshold applies
(TF_CPP_MIN_LOG_LEVEL does not reach them), so ``quiet_native_logs`` catches them at the file
descriptor while the call that prints them runs, and passes every other line on (ERROR lines included).
The command line's ``--verbose`` shows them all (``show_native_logs``).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

# TensorFlow's start-up lines in absl's format: INFO (I) and WARNING (W) lines, and absl's own notice.
_TENSORFLOW_STARTUP = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\])"
)
# TensorFlow probing CUDA on a machine that has no NVIDIA driver: an "error" that only says "no GPU".
_NO_DRIVER_PROBE = re.compile(r"^E\d{4} .*cuda_platform\.cc:\d+\] failed call to cuInit")
# LiteRT's delegate notice (once per interpreter) and the converter's quantization summary.
_LITERT = re.compile(
    r"^(INFO: Created TensorFlow Lite \w+ delegate for CPU\.|fully_quantize: \d+, inference_type: )"
)

_shown = False


def show_native_logs(show: bool = True) -> None:
    """Lets (or stops) every native runtime line through ``quiet_native_logs`` in this process."""
    global _shown
    _shown = show


def _noise(line: str) -> bool:
    if _TENSORFLOW_STARTUP.match(line) or _LITERT.match(line):
        return True
    return bool(_NO_DRIVER_PROBE.match(line)) and not os.path.exists("/proc/driver/nvidia")


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Runs the body with native runtimes' start-up lines held back; every other line the body wrote
    to stderr is printed after it, in order."""
    if _shown:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            for line in log.read().decode(errors="replace").splitlines():
                if not _noise(line):
                    print(line, file=sys.stderr)
