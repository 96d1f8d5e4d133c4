"""`python -m service.prepare`: build (or verify) the configured model's cached ONNX files, offline."""
from __future__ import annotations

import sys
import time

from .config import load_settings
from .errors import FaceIdError
from .vision.embedders.registry import create_embedder


def main() -> int:
    started = time.monotonic()
    try:
        embedder = create_embedder(load_settings()).prepare()
    except FaceIdError as exc:
        print(f"model preparation failed: {exc.message}", file=sys.stderr)
        return 1
    prepared = getattr(embedder, "prepared", None)
    where = f" at {prepared.path} (sha256 {prepared.sha256[:12]}...)" if prepared else ""
    print(f"model {embedder.model_id} ready{where} in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
