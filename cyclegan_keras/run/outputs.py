"""Where this package may write: nothing it did not create is ever deleted or overwritten.

Every writer asks here first. A path may be written when it does not exist, when it is an empty
folder, or when it holds a previous output of the same kind (a SavedModel where a SavedModel goes, a
``.tflite`` where a ``.tflite`` goes); anything else is refused with an ``OutputExistsError`` that says
what to pass instead, before anything is touched.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator

from cyclegan_keras.errors import OutputExistsError, UsageError, WriteError

# What TensorFlow writes into a SavedModel folder (Keras' ExportArchive included).
_SAVED_MODEL_ENTRIES = {"saved_model.pb", "variables", "assets", "fingerprint.pb", "keras_metadata.pb"}


def _tflite(path: str) -> bool:
    with open(path, "rb") as file:
        return file.read(8)[4:8] == b"TFL3"  # the FlatBuffer file identifier of LiteRT models


def _onnx(path: str) -> bool:
    with open(path, "rb") as file:
        return file.read(1) == b"\x08"  # an ONNX ModelProto starts with its ir_version field


def _keras(path: str) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return {"config.json", "metadata.json"} <= set(archive.namelist())


def _json_of(key: str):
    def check(path: str) -> bool:
        try:
            with open(path) as file:
                return key in json.load(file)
        except (ValueError, OSError):
            return False

    return check


FILE_KINDS = {
    "tflite": ("a LiteRT model", _tflite),
    "onnx": ("an ONNX model", _onnx),
    "keras": ("a .keras model", _keras),
    "tflite_metadata": ("LiteRT metadata", _json_of("quantization")),
    "report": ("an evaluation report", _json_of("fid")),
}


def is_saved_model(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder that holds a SavedModel and nothing else."""
    path = os.fspath(path)
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        return False
    return set(os.listdir(path)) <= _SAVED_MODEL_ENTRIES


def check_output_file(
    path: str | os.PathLike, kind: str, flag: str = "--out", overwrite: bool | None = None
) -> None:
    """Refuses ``path`` unless it is new or a previous output of ``kind`` (a key of ``FILE_KINDS``).

    Args:
        overwrite: None lets a previous output of ``kind`` be replaced; False refuses it too (the
            user's trained or exported model), saying to pass ``--overwrite``; True allows it.

    Raises:
        OutputExistsError: ``path`` is a folder, or a file of another kind, or (``overwrite=False``)
            any existing file.
    """
    path = os.fspath(path)
    what, is_kind = FILE_KINDS[kind]
    if os.path.isdir(path):
        raise OutputExistsError(f"{flag} {path!r} is a folder; pass the path of {what} file to write.")
    if os.path.lexists(path) and not (os.path.isfile(path) and is_kind(path)):
        raise OutputExistsError(
            f"{flag} {path!r} already exists and is not {what}, so it was left untouched: "
            "pass a new path, or remove the file yourself."
        )
    if os.path.lexists(path) and overwrite is False:
        raise OutputExistsError(
            f"{flag} {path!r} already holds {what}, so it was left untouched: pass --overwrite to "
            "replace it, or a new path."
        )


def check_output_folder(
    path: str | os.PathLike, is_ours: Callable[[str], bool], what: str, flag: str = "--out"
) -> None:
    """Refuses a folder ``path`` unless it is new, empty, or ``is_ours(path)`` (a previous output).

    Raises:
        OutputExistsError: ``path`` is a file, or a folder with other contents.
    """
    path = os.fspath(path)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise OutputExistsError(f"{flag} {path!r} is a file; pass a folder for the {what}.")
    if os.path.isdir(path) and os.listdir(path) and not is_ours(path):
        raise OutputExistsError(
            f"{flag} {path!r} is a folder that holds other files, so it was left untouched: "
            f"pass a new or empty folder for the {what}."
        )


def check_new_files(paths: Iterable[str], protected: Iterable[str] = (), overwrite: bool = False) -> None:
    """Refuses to write any of ``paths`` that exists (unless ``overwrite``), and any that is one of
    ``protected`` (the inputs being read) whatever ``overwrite`` says.

    Raises:
        OutputExistsError: naming the first few files in the way.
    """
    protected = {os.path.realpath(p) for p in protected}
    inputs = [p for p in paths if os.path.realpath(p) in protected]
    if inputs:
        raise OutputExistsError(
            f"Writing {inputs[0]!r} would replace an input ({len(inputs)} in all): pass another --out folder."
        )
    existing = [p for p in paths if os.path.lexists(p)]
    if existing and not overwrite:
        shown = ", ".join(repr(p) for p in existing[:3]) + (
            f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        )
        raise OutputExistsError(
            f"{shown} already exist(s); nothing was written. "
            "Pass another --out, or --overwrite to replace them."
        )


def write_failed(path: str | os.PathLike, what: str, error: OSError, kept: str = "") -> WriteError:
    """The one-line ``WriteError`` for a failed write of ``what`` at ``path``; ``kept`` says what is safe."""
    cause = error.strerror or str(error) or type(error).__name__
    failed = WriteError(f"Could not write {what} {os.fspath(path)!r}: {cause}.{' ' + kept if kept else ''}")
    failed.errno = error.errno
    return failed


# A full disk, a quota, a read-only or failing disk, a file-size limit.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG})


@contextlib.contextmanager
def write_errors(
    path: str | os.PathLike,
    what: str,
    kept: str | Callable[[], str] = "",
    only: frozenset[int] | None = None,
) -> Iterator[None]:
    """Turns an ``OSError`` in the block (a full disk, a read-only folder) into the one-line
    ``WriteError`` of ``write_failed``; ``kept`` (or what it returns, asked only then) says what is safe.
    With ``only``, other errors (a missing input, say) pass unchanged."""
    try:
        yield
    except (WriteError, UsageError):  # an OutputExistsError is an OSError too, and a refusal (exit 2)
        raise
    except OSError as error:
        if only is not None and error.errno not in only:
            raise
        raise write_failed(path, what, error, kept() if callable(kept) else kept) from error


@contextlib.contextmanager
def staged_file(path: str | os.PathLike, what: str = "the file") -> Iterator[str]:
    """Yields a temporary path beside ``path`` (same extension) to write; moves it to ``path`` when the
    block succeeds. On any failure the temporary file is removed and ``path`` is left as it was; an
    ``OSError`` (a full disk) becomes a ``WriteError`` naming ``path`` and the cause."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    stem, extension = os.path.splitext(name)
    staging = None
    try:
        with write_errors(path, what):
            os.makedirs(folder, exist_ok=True)
            while staging is None:
                candidate = os.path.join(folder, f".{stem}.partial-{secrets.token_hex(4)}{extension}")
                # O_EXCL: never someone else's file; 0o666 and the umask: what a plain open gives
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                    staging = candidate
            yield staging
            os.replace(staging, path)
            staging = None
    finally:
        if staging is not None:
            with contextlib.suppress(OSError):
                os.remove(staging)


def staging_folder(parent: str | os.PathLike, prefix: str) -> str:
    """A new folder in ``parent`` to build an output in before it moves into place, with the
    permissions a plain ``mkdir`` gives (``mkdtemp``'s owner-only ones would hide a web app from the
    server that serves it, and a run folder from its other users)."""
    folder = tempfile.mkdtemp(prefix=prefix, dir=parent)
    os.chmod(folder, 0o777 & ~_umask())
    return folder


def plain_permissions(folder: str | os.PathLike) -> None:
    """Gives every folder and file under ``folder`` the permissions ``mkdir`` and ``open`` give, for
    trees copied from somewhere that kept owner-only ones (a runtime cached by an earlier version)."""
    mask = _umask()
    os.chmod(folder, 0o777 & ~mask)
    for root, folders, files in os.walk(folder):
        for name in folders:
            os.chmod(os.path.join(root, name), 0o777 & ~mask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~mask)


def _umask() -> int:
    mask = os.umask(0o022)  # reading the mask means setting it: put it straight back
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, data, what: str = "the file") -> None:
    """Writes ``data`` as JSON to ``path`` atomically: a flushed temporary file renamed into place."""
    with staged_file(path, what) as staging, open(staging, "w") as file:
        json.dump(data, file, indent=2)
        file.flush()
        os.fsync(file.fileno())
