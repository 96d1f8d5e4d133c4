"""State dicts saved by ``torch.save`` read into numpy arrays without torch.

Why: the runtime image must not carry torch (over 1 GB with its CUDA libraries) only to read three small MTCNN
weight files once. A torch file is a pickle whose tensors point at raw storage blobs; we unpickle it with an
allow-list (an ordered dict, the tensor rebuild function, the storage types), so a file that asks for any other
callable is refused instead of executed, and view each tensor into its storage with numpy.

Both of torch's formats are read: the zip archive (``<name>/data.pkl`` + ``<name>/data/<key>``, torch >= 1.6)
and the legacy stream (magic, protocol and system-info pickles, the state-dict pickle, the storage keys, then
each storage as an int64 element count and its bytes), which is what facenet-pytorch's ``{p,r,o}net.pt`` are.
"""
from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# torch's storage class names -> numpy dtypes (little-endian, as torch writes them on every platform we run).
_STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8",
    "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}


@dataclass
class _Storage:
    """A storage the pickle refers to; its bytes arrive later (legacy) or from the archive (zip)."""
    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> np.ndarray:
        data = self.storage.data
        if data is None or data.size != self.storage.numel:
            raise ModelError(f"torch file: storage {self.storage.key} is missing or truncated")
        needed = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1 if all(self.size) else 0
        if needed > data.size:
            raise ModelError(f"torch file: a tensor reaches past its storage {self.storage.key}")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(data[self.offset:], self.size, [s * item for s in self.stride])
        return np.array(view)  # a contiguous copy that owns its memory


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                    *_: Any) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(int(n) for n in size), tuple(int(s) for s in stride))


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Unpickler(pickle.Unpickler):
    """Only what a plain state dict needs; every other global is refused."""

    def __init__(self, file: io.BufferedIOBase | io.BytesIO, storage_of: Callable[[tuple], _Storage]) -> None:
        super().__init__(file)
        self._storage_of = storage_of

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise ModelError(f"torch file refers to {module}.{name}, which a plain state dict never does")

    def persistent_load(self, pid: Any) -> _Storage:
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise ModelError("torch file: unexpected persistent reference")
        return self._storage_of(pid)


def load_state_dict(path: Path) -> dict[str, np.ndarray]:
    """``{name: array}`` from a ``torch.save``'d state dict (either format), without importing torch."""
    raw = path.read_bytes()
    try:
        state = _load_zip(raw) if zipfile.is_zipfile(io.BytesIO(raw)) else _load_legacy(raw)
    except (pickle.UnpicklingError, EOFError, struct.error, KeyError, ValueError, IndexError) as exc:
        raise ModelError(f"cannot read torch file {path}: {exc}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, _TensorRef) for v in state.values()):
        raise ModelError(f"{path} is not a state dict of tensors")
    return {str(name): ref.array() for name, ref in state.items()}


def _storages() -> tuple[dict[str, _Storage], Callable[[tuple], _Storage]]:
    seen: dict[str, _Storage] = {}

    def storage_of(pid: tuple) -> _Storage:
        _, kind, key, _location, numel = pid[:5]
        if not isinstance(kind, _StorageType):
            raise ModelError("torch file: unknown storage type")
        key = str(key)
        if key not in seen:
            seen[key] = _Storage(key, kind.dtype, int(numel))
        return seen[key]
    return seen, storage_of


def _load_zip(raw: bytes) -> Any:
    archive = zipfile.ZipFile(io.BytesIO(raw))
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise ModelError("torch archive without exactly one data.pkl")
    root = pickles[0][: -len("data.pkl")]
    seen, storage_of = _storages()
    state = _Unpickler(io.BytesIO(archive.read(pickles[0])), storage_of).load()
    for storage in seen.values():
        storage.data = np.frombuffer(archive.read(f"{root}data/{storage.key}"), storage.dtype)[:storage.numel]
    return state


def _load_legacy(raw: bytes) -> Any:
    stream = io.BytesIO(raw)
    plain = _Unpickler(stream, lambda pid: _refuse(pid))  # the header pickles hold only numbers and dicts
    if plain.load() != _LEGACY_MAGIC or plain.load() != _LEGACY_PROTOCOL:
        raise ModelError("not a torch file (bad magic number or protocol)")
    plain.load()  # system info: endianness and type sizes
    seen, storage_of = _storages()
    state = _Unpickler(stream, storage_of).load()
    keys = _Unpickler(stream, _refuse).load()
    for key in keys:
        storage = seen[str(key)]
        (count,) = struct.unpack("<q", stream.read(8))
        if count != storage.numel:
            raise ModelError(f"torch file: storage {key} holds {count} elements, expected {storage.numel}")
        nbytes = count * storage.dtype.itemsize
        blob = stream.read(nbytes)
        if len(blob) != nbytes:
            raise ModelError(f"torch file: storage {key} is truncated")
        storage.data = np.frombuffer(blob, storage.dtype)
    return state


def _refuse(pid: tuple) -> _Storage:
    raise ModelError("torch file: a storage reference where none belongs")
