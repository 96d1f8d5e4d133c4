"""The serving process never imports torch: MTCNN and every embedder run on OpenVINO, OpenCV or dlib from
the files ``make prepare`` left. Checked in a fresh interpreter (this test process has torch loaded by the
reference tests), through the real app factory and real requests: register, verify, identify, detect."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from .conftest import ADMIN_KEY, FIXTURES

SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from service import create_app
    from service.config import load_settings

    data_dir, models, fixtures, key = sys.argv[1:5]
    (Path(data_dir) / "models").symlink_to(models)
    app = create_app(load_settings(env={}, data_dir=data_dir, admin_keys=key))
    client, auth = app.test_client(), {"X-API-Key": key}

    def image(rel):
        return (open(Path(fixtures) / rel, "rb"), Path(rel).name)

    codes = [
        client.post("/v1/persons", headers=auth, data={"name": "Joe", "person_id": "joe",
                                                        "image": image("people/Joe_Biden/0001.jpg")}).status_code,
        client.post("/v1/verify", headers=auth, data={"person_id": "joe",
                                                       "image": image("people/Joe_Biden/0002.jpg")}).status_code,
        client.post("/v1/identify", headers=auth, data={"image": image("people/Joe_Biden/0002.jpg")}).status_code,
        client.post("/v1/detect", headers=auth, data={"image": image("multi_face/compreface__011_3.jpg")}).status_code,
    ]
    loaded = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "torchvision", "facenet_pytorch", "tensorboard"})
    print(json.dumps({"codes": codes, "loaded": loaded}))
""")


def test_serving_imports_no_torch(settings, recognizer, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(data_dir), str(settings.models_dir), str(FIXTURES),
                          ADMIN_KEY], capture_output=True, text=True, timeout=300, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["codes"] == [201, 200, 200, 200]
    assert result["loaded"] == []
