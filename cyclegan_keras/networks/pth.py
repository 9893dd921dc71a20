"""Reading PyTorch ``.pth`` state dicts into numpy arrays, without PyTorch, as safely as ``weights_only``.

Both of PyTorch's file formats: the zip archive of ``torch.save`` since PyTorch 1.6 (``data.pkl`` plus
one raw file per storage), and the legacy format before it (a magic number, three small pickles,
the state dict's pickle, the storage keys, then each storage's bytes). The pickles are read by an
unpickler that resolves only what a state dict needs (``OrderedDict``, the typed storage classes,
the tensor rebuild functions, each mapped to a numpy stand-in) and refuses every other global
before anything from the file runs, as ``torch.load(weights_only=True)`` does.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cyclegan_keras.errors import UsageError

# torch.<Name>Storage -> numpy dtype
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class UnsafePickleError(UsageError):
    """A ``.pth`` file names a global that a state dict has no need of; nothing of it was run."""


@dataclass(frozen=True)
class _StorageType:
    dtype: type


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride, *unused) -> np.ndarray:
    if not size:
        return np.array(storage[offset])
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)
    )
    return np.array(view)  # a contiguous copy that owns its memory


def _rebuild_parameter(data: np.ndarray, *unused) -> np.ndarray:
    return data


_ALLOWED: dict[tuple[str, str], object] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()},
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storage: Callable[[tuple], np.ndarray], where: str):
        super().__init__(file)
        self._storage = storage
        self._where = where

    def find_class(self, module: str, name: str):
        found = _ALLOWED.get((module, name))
        if found is None:
            raise UnsafePickleError(
                f"{self._where} asks to load {module}.{name}, which a state dict of weights never needs; "
                "it was refused and nothing in the file was run. Only load files from sources you trust."
            )
        return found

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and saved_id and saved_id[0] == "storage"):
            raise UnsafePickleError(f"{self._where} holds an unknown persistent object {saved_id!r:.80}.")
        return self._storage(saved_id[1:])


def _dtype_of(storage_type) -> np.dtype:
    if not isinstance(storage_type, _StorageType):
        raise UsageError(f"Unsupported PyTorch storage type {storage_type!r}.")
    return np.dtype(storage_type.dtype)


def _read_zip(path: str) -> object:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise UsageError(f"{path!r} is a zip file but not a PyTorch checkpoint (no data.pkl).")
        root = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if root + "byteorder" in names:
            byteorder = archive.read(root + "byteorder").decode().strip()
        cache: dict[str, np.ndarray] = {}

        def storage(data: tuple) -> np.ndarray:
            storage_type, key, _location, _numel = data[:4]
            if key not in cache:
                dtype = _dtype_of(storage_type).newbyteorder("<" if byteorder == "little" else ">")
                cache[key] = np.frombuffer(archive.read(f"{root}data/{key}"), dtype=dtype).astype(
                    dtype.newbyteorder("=")
                )
            return cache[key]

        with archive.open(pickles[0]) as file:
            return _Unpickler(file, storage, repr(path)).load()


def _read_legacy(path: str) -> object:
    with open(path, "rb") as file:
        raw = file.read()
    stream = io.BytesIO(raw)
    where = repr(path)
    header = []
    for _ in range(3):  # magic number, protocol version, system info: plain values
        header.append(_Unpickler(stream, lambda data: None, where).load())
    if header[0] != _LEGACY_MAGIC:
        raise UsageError(f"{path!r} is not a PyTorch checkpoint (wrong magic number).")
    little_endian = header[2].get("little_endian", True) if isinstance(header[2], dict) else True
    wanted: dict[str, np.dtype] = {}

    def storage(data: tuple) -> dict:
        storage_type, key, _location, _numel, view = data
        wanted[key] = _dtype_of(storage_type)
        # Storages come after this pickle: hand out a placeholder, filled in once they are read.
        return {"key": key, "view": view}

    pending: list[tuple] = []

    def rebuild(storage_ref, offset, size, stride, *unused):
        result = {"ref": storage_ref, "offset": offset, "size": size, "stride": stride}
        pending.append(result)
        return result

    class Deferred(_Unpickler):
        def find_class(self, module, name):
            found = super().find_class(module, name)
            return rebuild if found is _rebuild_tensor else found

    state = Deferred(stream, storage, where).load()
    keys = _Unpickler(stream, lambda data: None, where).load()
    storages: dict[str, np.ndarray] = {}
    for key in keys:
        (count,) = struct.unpack("<q", stream.read(8))
        dtype = wanted.get(key, np.dtype(np.uint8)).newbyteorder("<" if little_endian else ">")
        data = stream.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise UsageError(f"{path!r} ends early: the file is truncated.")
        storages[key] = np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("="))
    arrays = {}
    for item in pending:
        ref = item["ref"]
        base = storages[ref["key"]]
        if ref["view"] is not None:  # (view key, offset, size) of a storage view
            _, start, length = ref["view"]
            base = base[start : start + length]
        arrays[id(item)] = _rebuild_tensor(base, item["offset"], item["size"], item["stride"])
    return _replace(state, arrays)


def _replace(value, arrays: dict):
    if isinstance(value, dict) and id(value) in arrays:
        return arrays[id(value)]
    if isinstance(value, dict):
        return type(value)((k, _replace(v, arrays)) for k, v in value.items())
    if isinstance(value, list):
        return [_replace(v, arrays) for v in value]
    return value


def read_pth(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The state dict in a PyTorch ``.pth`` file, as ``{key: numpy array}``; PyTorch is not needed.

    Raises:
        MissingInputError: no such file.
        UnsafePickleError: the file names a global that a state dict does not need (as code would).
        UsageError: the file is not a PyTorch checkpoint, is truncated, or holds no state dict.
    """
    from cyclegan_keras.errors import MissingInputError

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingInputError(f"No checkpoint file at {path!r}.")
    try:
        state = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
    except UsageError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        KeyError,
        ValueError,
        TypeError,
        struct.error,
        zipfile.BadZipFile,
    ) as error:
        raise UsageError(
            f"{path!r} is not a readable PyTorch checkpoint ({type(error).__name__}: {error}); "
            "it may be truncated or an error page saved in its place."
        ) from error
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise UsageError(f"{path!r} holds a {type(state).__name__}, not a state dict of tensors.")
    return dict(state)
