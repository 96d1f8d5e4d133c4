"""A writer for the crash test (tests/test_crash.py), run as its own process and killed with SIGKILL at
random moments: it opens the store on a data dir (reconciling what an earlier kill left), then registers
and deletes persons as fast as it can, printing a line only after each write is acknowledged (returned)."""
from __future__ import annotations

import sys

import numpy as np

from service.compose import open_store
from service.config import load_settings
from service.core.records import NewFace

DIM = 32


def main(data_dir: str, run: str) -> None:
    store = open_store(load_settings(env={}, data_dir=data_dir), "crash-model", DIM)
    print("open", flush=True)
    rng = np.random.default_rng(int(run))
    mine: list[str] = []
    for n in range(100_000):
        person_id = f"r{run}-{n}"
        vectors = rng.normal(size=(2, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        faces = [NewFace(v, {"x": 0.0}, {"size": 100.0}, crop_jpeg=b"crop-" + person_id.encode()) for v in vectors]
        store.create_person(person_id=person_id, name=person_id, metadata={}, faces=faces, template=vectors[0])
        print(f"created {person_id}", flush=True)
        mine.append(person_id)
        if n % 3 == 2:
            gone = mine.pop(0)
            print(f"deleting {gone}", flush=True)  # from here it may be gone, acknowledged or not
            store.delete_person(gone)
            print(f"deleted {gone}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
