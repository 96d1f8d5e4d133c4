"""The one runtime every network runs on: OpenVINO's CPU plugin, in float32.

Measured on the 2-core machine (README, issue 12): against ONNX Runtime and cv2.dnn, on the same files,
OpenVINO runs SFace's two views in 7.0 ms instead of 13.8 (cv2.dnn) or 22 (ONNX Runtime), dlib's ResNet in
2.8 ms instead of 3.7, and MTCNN's three networks about 1.5 ms faster per photo.

Precision is pinned to float32. On CPUs with bfloat16 units OpenVINO would otherwise pick bfloat16 by itself:
faster, but the vectors would then depend on the host (cosine 0.9996 to float32 ones), and templates enrolled
on one host must mean the same on every other.
"""
from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .weights.cache import OnnxSource, PreparedModel, prepare_onnx, verified_bytes

# Inference requests per compilation: as many calls as can usefully overlap in one worker (gunicorn's
# threads, default 4, with room to spare); more wait their turn.
REQUESTS = 8
# Rows of one inference. An inference request keeps the buffers of the largest batch it has run, for good: a
# grid of 400 faces sent R-Net 5,088 crops, O-Net 1,894 and the embedders 800 views, and the worker's RSS went
# 0.4 -> 6.8 GB and stayed there. In slices of 32 the same photo leaves 0.45 GB after detection (64 faces
# embedded: +0.3 GB against +1.1 GB in slices of 256), and each row's output is bit-identical. A verify (a face
# and its mirror) and most photos' R-Net candidates fit in one slice.
MAX_BATCH = 32


class PerThread:
    """One instance per thread of something that is not thread-safe (dlib's shape predictors), made on
    first use in each thread."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._local = threading.local()

    def get(self) -> Any:
        value = getattr(self._local, "value", None)
        if value is None:
            value = self._local.value = self._factory()
        return value


class _Overlap:
    """How many network calls are running in this process right now, across every network."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0

    def enter(self) -> bool:
        """Count one more call; True when another was already running."""
        with self._lock:
            self.running += 1
            return self.running > 1

    def leave(self) -> None:
        with self._lock:
            self.running -= 1


_overlap = _Overlap()


class Network:
    """One graph compiled twice (measured on 2 cores: README, "End to end over loopback HTTP").

    * ``wide`` runs a call on ``threads`` threads (every core by default): the lowest latency while the
      worker serves one request.
    * ``narrow`` runs each call on one core, a stream per core, side by side: the most requests per second
      once requests overlap, because small networks split across cores spend much of their time
      synchronising, and two requests' threads then fight for the cores (at 4 clients: 39.9 verifies/s this
      way against 31.0 with every call wide; CPU per verify 44 against 58 ms).

    A call takes ``wide`` when no other network call runs in the process, else ``narrow``. (Running one
    request's independent inputs side by side on the streams instead, P-Net's pyramid levels or a face and
    its mirror, was slower in the whole pipeline: 29.2 against 25.0 ms a verify.) Calls from any thread are
    safe: each call borrows an inference request of its own."""

    def __init__(self, wide: Any, narrow: Any | None, requests: int = REQUESTS) -> None:
        if narrow is None:  # one core: a single compilation serves every call
            self._wide = self._narrow = _RequestPool(wide, requests)
        else:  # only a call that runs alone takes ``wide``, so it never needs more than one request
            self._wide, self._narrow = _RequestPool(wide, 1), _RequestPool(narrow, requests)

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        """The network's outputs, in its graph's order, for one input batch (copies the caller may keep),
        run ``MAX_BATCH`` rows at a time."""
        if len(batch) <= MAX_BATCH:
            return self._infer(batch)
        parts = [self._infer(batch[i:i + MAX_BATCH]) for i in range(0, len(batch), MAX_BATCH)]
        return [np.concatenate(outputs) for outputs in zip(*parts)]

    def _infer(self, batch: np.ndarray) -> list[np.ndarray]:
        pool = self._narrow if _overlap.enter() else self._wide
        try:
            with pool.borrow() as request:
                result = request.infer(np.ascontiguousarray(batch, np.float32))
                return [np.array(value) for value in result.to_tuple()]
        finally:
            _overlap.leave()


class _RequestPool:
    """A compilation's inference requests, all made when it is compiled and lent to one call at a time: no
    request is created while others infer, and memory does not grow with the number of threads. A call that
    finds none free waits for one (without holding the GIL)."""

    def __init__(self, compiled: Any, size: int) -> None:
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(size):
            self._free.put(compiled.create_infer_request())
        # A tensor's first numpy view initialises pybind11's numpy bridge inside pyopenvino, once per process;
        # two threads making the first one at once can deadlock (py-spy: one thread in the bridge's call_once
        # waiting for the GIL, another holding it at a static guard; a worker's first concurrent requests hung
        # until gunicorn killed it). So the first view is made here, in the thread that compiles.
        np.asarray(compiled.create_infer_request().get_input_tensor(0).data)

    @contextmanager
    def borrow(self) -> Iterator[Any]:
        request = self._free.get()
        try:
            yield request
        finally:
            self._free.put(request)


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def compile_network(prepared: PreparedModel, threads: int) -> Network:
    """``prepared``'s ONNX file compiled for the CPU, ``wide`` on ``threads`` threads (0: one per core) and
    ``narrow`` on one thread per stream, a stream per core (``Network``). Compiled from the very bytes that
    were checksummed, so the file cannot change between check and load."""
    import openvino as ov

    core, n = ov.Core(), cores()
    model = core.read_model(verified_bytes(prepared))
    wide = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
                                             "INFERENCE_NUM_THREADS": threads if threads > 0 else n})
    narrow = None
    if n > 1:
        narrow = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "NUM_STREAMS": n,
                                                   "INFERENCE_NUM_THREADS": n})
    return Network(wide, narrow)


def load_network(source: OnnxSource, models_dir: Path, threads: int) -> tuple[PreparedModel, Network]:
    """The prepared (cached, checksummed) ONNX file for ``source``, compiled (``compile_network``)."""
    prepared = prepare_onnx(source, models_dir)
    return prepared, compile_network(prepared, threads)
