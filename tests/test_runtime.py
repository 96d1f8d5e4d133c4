"""The inference runtime (service/vision/runtime.py): each network is compiled twice, ``wide`` for a call
that runs alone and ``narrow`` for calls that overlap others. Both must give the same answers, and calls
from many threads at once must give what one call alone gives, on real photos through the real pipeline."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from service.errors import ModelError
from service.vision import runtime

from .conftest import fixture_bytes, fixture_path

pytestmark = pytest.mark.long  # 20 s or more: scheduled first (tests/conftest.py)

ROOT = Path(__file__).resolve().parent.parent

PHOTOS = ["people/Barack_Obama/0001.jpg", "people/Joe_Biden/0002.jpg", "people/Kit_Harington/0001.jpg",
          "people/Rose_Leslie/0001.jpg", "multi_face/compreface__011_3.jpg"]


@pytest.fixture(scope="module")
def expected(pipeline):
    """Each photo's faces and embeddings, computed one call at a time."""
    return [pipeline.probes(fixture_bytes(rel), all_faces=True) for rel in PHOTOS]


def test_a_call_that_overlaps_another_gives_what_a_lone_call_gives(pipeline, expected):
    if runtime.cores() < 2:
        pytest.skip("one core: each network is compiled once, there is no narrow compilation to compare")
    assert runtime._overlap.running == 0
    runtime._overlap.enter()  # as if another request were inside a network: every call now takes ``narrow``
    try:
        busy = [pipeline.probes(fixture_bytes(rel), all_faces=True) for rel in PHOTOS]
    finally:
        runtime._overlap.leave()
    for alone, overlapped in zip(expected, busy):
        assert len(alone) == len(overlapped)
        for a, b in zip(alone, overlapped):
            assert np.abs(a.face.box - b.face.box).max() < 1e-3
            assert float(a.embedding @ b.embedding) > 0.99999


def test_many_threads_at_once_get_their_own_answers(pipeline, expected):
    """Six threads, each running every photo several times in its own order: no thread may see another's
    result (each thread has its own inference requests) and nothing may fail."""
    failures: list[str] = []

    def work(offset: int) -> None:
        for k in range(3 * len(PHOTOS)):
            i = (offset + k) % len(PHOTOS)
            try:
                got = pipeline.probes(fixture_bytes(PHOTOS[i]), all_faces=True)
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                failures.append(f"{PHOTOS[i]}: {exc!r}")
                continue
            if len(got) != len(expected[i]) or any(float(a.embedding @ b.embedding) < 0.99999
                                                   for a, b in zip(got, expected[i])):
                failures.append(f"{PHOTOS[i]}: another photo's answer")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert runtime._overlap.running == 0


def test_a_file_changed_after_preparation_is_not_compiled(pipeline, tmp_path):
    """The runtime compiles the bytes it checksummed: a prepared file changed after its check is refused."""
    sface = next(part for part, _ in pipeline.embedder.parts if part.model_id == "sface")
    copy = tmp_path / sface.prepared.path.name
    shutil.copy(sface.prepared.path, copy)
    prepared = dataclasses.replace(sface.prepared, path=copy)
    runtime.compile_network(prepared, 1)  # the intact copy compiles
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum"):
        runtime.compile_network(prepared, 1)


FIRST_CALLS = textwrap.dedent("""
    import os, sys, threading
    from pathlib import Path
    from service.compose import build_pipeline
    from service.config import load_settings

    data_dir, models, photo = sys.argv[1:4]
    (Path(data_dir) / "models").symlink_to(models)
    pipeline = build_pipeline(load_settings(env={}, data_dir=data_dir)).prepare()
    data, start = Path(photo).read_bytes(), threading.Barrier(6)

    def first_call():
        start.wait()
        pipeline.probes(data)

    threads = [threading.Thread(target=first_call, daemon=True) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    print("hung" if any(t.is_alive() for t in threads) else "ok", flush=True)
    os._exit(0)
""")


def test_the_first_calls_of_a_fresh_process_from_many_threads_do_not_deadlock(settings, pipeline, tmp_path):
    """A worker's first requests arrive together. Before pyopenvino's numpy bridge was opened at compile time,
    six threads making their first call at once deadlocked in about one fresh process in five (24 of 30 ok);
    each trial here is a fresh process, as a new gunicorn worker is. (``pipeline``: the models are prepared.)"""
    outcomes = []
    for trial in range(8):
        data_dir = tmp_path / f"trial{trial}"
        data_dir.mkdir()
        run = subprocess.run([sys.executable, "-c", FIRST_CALLS, str(data_dir), str(settings.models_dir.resolve()),
                              str(fixture_path("people/Kit_Harington/0001.jpg"))],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
        outcomes.append(run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-300:])
    assert outcomes == ["ok"] * 8
