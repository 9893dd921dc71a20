"""``cyclegan-keras``'s entry point: parses, runs the command, and turns a user's mistake into one line
and an exit status (a bug keeps its traceback)."""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib.util
import os
import signal
import sys
import threading
import warnings
from collections.abc import Sequence

from cyclegan_keras.cli.commands import use_backend
from cyclegan_keras.cli.parser import build_parser


@contextlib.contextmanager
def _one_line_warnings(command: str):
    """Our warnings as one line each (``cyclegan-keras train: warning: ...``), not Python's two lines
    with a source path; other libraries' warnings keep Python's format."""
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, UserWarning) or f"{os.sep}cyclegan_keras{os.sep}" not in filename:
            return shown(message, category, filename, lineno, file, line)
        print(f"cyclegan-keras {command}: warning: {message}", file=file or sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``cyclegan-keras``; returns the exit status."""
    _take_ctrl_c()
    parser = build_parser()
    args = parser.parse_args(argv)
    from cyclegan_keras.errors import DatasetUnavailableError, UsageError, WriteError

    try:
        if args.framework_logs:
            from cyclegan_keras.system.native_logs import show_native_logs

            show_native_logs()
        else:  # inside the handlers: a Ctrl-C during TensorFlow's import is one line
            _quiet_tensorflow(args)
        with _one_line_warnings(args.command):
            return args.run(args)
    except KeyboardInterrupt as error:
        if args.debug:
            raise
        # 128 + the signal's number, as a shell reports a process the signal ended.
        status, why = (143, str(error)) if type(error).__name__ == "Interrupted" else (130, "interrupted")
        resume = "; resume a training run with --resume" if args.command == "train" else ""
        parser.exit(status, f"cyclegan-keras: {why}{resume}\n")
    except Exception as error:
        if args.debug:
            raise
        if isinstance(error, (UsageError, DatasetUnavailableError, WriteError)):
            status = 1 if isinstance(error, WriteError) else 2
            parser.exit(status, f"cyclegan-keras {args.command}: error: {error}\n")
        if _out_of_memory(error):
            parser.exit(
                2,
                f"cyclegan-keras {args.command}: error: out of memory ({type(error).__name__}): lower the "
                "sizes (--crop-size, --batch-size, --ngf; for photos --max-memory or --tile).\n",
            )
        if _not_writable(error):
            parser.exit(
                2,
                f"cyclegan-keras {args.command}: error: cannot use {error.filename!r} ({error.strerror}): "
                "check its permissions, or pass a place you can write (--out).\n",
            )
        raise  # anything but what a user can fix is a bug, and keeps its traceback
    return 0


def _out_of_memory(error: Exception) -> bool:
    """An allocation failure of Python or of a framework, told by name (importing the frameworks to
    compare classes would load them all): TensorFlow's, PyTorch's, and XLA's on JAX."""
    name = type(error).__name__
    return (
        isinstance(error, MemoryError)
        or name in ("ResourceExhaustedError", "OutOfMemoryError")
        or (name in ("XlaRuntimeError", "JaxRuntimeError") and "RESOURCE_EXHAUSTED" in str(error))
    )


def _not_writable(error: Exception) -> bool:
    """A file or folder the user may not use: no permission, a read-only file system."""
    return (
        isinstance(error, OSError)
        and error.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
        and error.filename is not None
    )


def _quiet_tensorflow(args: argparse.Namespace) -> None:
    """Imports TensorFlow, when the command will, with its start-up INFO and WARNING lines hidden
    (``cyclegan_keras.system.native_logs``). A level the user set in TF_CPP_MIN_LOG_LEVEL is left alone."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.command == "serve" or (args.command == "pretrained" and not args.name):
        return
    if args.command in ("train", "translate"):
        use_backend(args)
        from cyclegan_keras.training.backends import active_backend

        # JAX and PyTorch need no TensorFlow: to train from the Python pipeline, or to translate (a
        # SavedModel's runner imports TensorFlow itself).
        needs_tensorflow = args.command == "train" and getattr(args, "input_pipeline", "auto") == "tf_data"
        if active_backend() != "tensorflow" and not needs_tensorflow:
            return
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    from cyclegan_keras.system.native_logs import quiet_native_logs

    with quiet_native_logs():
        import tensorflow as tf

        tf.config.list_physical_devices()


def _take_ctrl_c() -> None:
    """Ctrl-C (SIGINT) stops every command, also one started where SIGINT was ignored.

    A process started in the background of a non-interactive shell (a CI job, ``cmd &`` in a
    script, some notebook and job runners) inherits SIGINT as ignored, and Python then installs no
    handler of its own: Ctrl-C, or ``kill -INT``, did nothing, and a waiting worker waited on.
    """
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
