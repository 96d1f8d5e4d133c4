"""The embedded index's disk fills up, then space is freed: registrations that commit are answered 201 (the
records are the truth; the index catches up), the new person is found by identify meanwhile (scored from
the records), verify and /healthz never notice, and once there is space again the index catches up by
itself, without a restart. Needs root (a small tmpfs stands for the full disk)."""
import os
import subprocess
import time

import numpy as np
import pytest

from service import create_app
from service.config import replace
from service.errors import StoreUnavailable
from service.web import close_app
from service.web.context import get_recognizer

from .conftest import CLIENT, upload

# Found in a clean-clone run when Chroma itself met the full disk (1 of 4 runs): after the space was freed,
# embedded Chroma's Rust upsert hung holding the GIL and froze the process. The index now refuses writes
# below index_min_free_mb free, so Chroma never writes into a full disk.
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture()
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path) -> None:
    """Take every free byte of the file system ``path`` is on."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
        except OSError:
            pass


def test_index_disk_full_then_freed(tmp_path, settings, app, small_disk):  # app: the models are prepared
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(settings.models_dir)
    (data_dir / "chroma").symlink_to(small_disk)  # the index on the small disk, the records beside it
    served = create_app(replace(settings, data_dir=data_dir, index_timeout_s=3.0, index_min_free_mb=8))
    client = served.test_client()
    try:
        r = client.post("/v1/persons", data=upload("people/Kit_Harington/0001.jpg", name="Kit", person_id="kit"),
                        content_type="multipart/form-data", headers=CLIENT)
        assert r.status_code == 201, r.get_json()
        filler = small_disk / "filler"
        _fill(filler)
        for person_id, photo in (("rose", "Rose_Leslie/0001.jpg"), ("biden", "Joe_Biden/0001.jpg")):
            r = client.post("/v1/persons", data=upload(f"people/{photo}", name=person_id, person_id=person_id),
                            content_type="multipart/form-data", headers=CLIENT)
            # the records committed: that is the answer, whatever the index said (a 503 would make the
            # client retry and enrol the face twice)
            assert r.status_code == 201, r.get_json()
        assert get_recognizer(served).store.index_lag() == 2  # the index could not take them
        with pytest.raises(StoreUnavailable, match="nearly full"):  # refused before Chroma writes a byte
            get_recognizer(served).store.index.upsert("any", [("x", np.ones(4, np.float32))])
        started = time.monotonic()
        r = client.post("/v1/verify", data=upload("people/Kit_Harington/0003.jpg", person_id="kit"),
                        content_type="multipart/form-data", headers=CLIENT)
        assert r.status_code == 200 and r.get_json()["match"] is True and time.monotonic() - started < 5
        assert client.get("/healthz").status_code == 200
        r = client.post("/v1/identify", data=upload("people/Rose_Leslie/0002.jpg"),
                        content_type="multipart/form-data", headers=CLIENT)
        assert r.status_code == 200 and r.get_json()["faces"][0]["match"]["person_id"] == "rose", r.get_json()

        filler.unlink()  # space again: no restart, the upkeep thread catches up
        store = get_recognizer(served).store
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                gallery = store.gallery()
                if (store.index.ids(gallery.collection) == {"kit", "rose", "biden"}
                        and store.index_lag() == 0):
                    break
            except Exception:  # noqa: BLE001 - still recovering
                pass
            time.sleep(1)
        gallery = store.gallery()
        assert store.index.ids(gallery.collection) == {"kit", "rose", "biden"}
        for photo, who in (("Rose_Leslie/0002.jpg", "rose"), ("Joe_Biden/0002.jpg", "biden")):
            r = client.post("/v1/identify", data=upload(f"people/{photo}"), content_type="multipart/form-data",
                            headers=CLIENT)
            assert r.status_code == 200 and r.get_json()["faces"][0]["match"]["person_id"] == who
        assert client.get("/readyz").status_code == 200
    finally:
        close_app(served)
