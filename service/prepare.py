"""`python -m service.prepare`: build (or verify) the cached ONNX files of MTCNN and the configured model,
offline. The only step that may import torch (to export); the service then loads the files it leaves."""
from __future__ import annotations

import sys
import time

from .compose import build_pipeline
from .config import load_settings
from .errors import ConfigError, FaceIdError


def main() -> int:
    started = time.monotonic()
    try:
        pipeline = build_pipeline(load_settings()).prepare()
    except ConfigError as exc:  # the settings, not the model: say so
        print(f"configuration error: {exc.message}", file=sys.stderr)
        return 2
    except FaceIdError as exc:
        print(f"model preparation failed: {exc.message}", file=sys.stderr)
        return 1
    embedder = pipeline.embedder
    prepared = getattr(embedder, "prepared", None)
    where = f" at {prepared.path} (sha256 {prepared.sha256[:12]}...)" if prepared else ""
    print(f"MTCNN and model {embedder.model_id} ready{where} in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
