"""Bulk operations on the face store, through the same recognizer and store the service uses (``compose``).

    python -m enroll import PHOTOS_DIR      # one sub-folder per person: folder name = person id and name
    python -m enroll reindex --from MODEL   # re-embed stored face crops of another model id with the current one
    python -m enroll migrate                # move a data dir of the Chroma-only format into the records database
    python -m enroll repair                 # make the vector index match the records (a full scan, on demand)
    python -m enroll rebuild-index          # a new index generation from the records, while the service serves
    python -m enroll compact                # make erasures final on disk now (the service does it hourly)
    python -m enroll keys list|create|revoke|rotate   # API keys (see enroll/keys.py)

With the embedded store, stop the service first: the data dir is locked by one process at a time. With
PostgreSQL and a Chroma server, every command runs while the instances serve: a rebuild fills the next
index generation beside the current one and every instance follows the switch.
Each person is all-or-nothing, exactly like POST /v1/persons; failures are reported and the run goes on.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from service.compose import build_pipeline, build_recognizer, index_centre, migrate, open_store
from service.config import load_settings
from service.core.recognizer import Recognizer
from service.core.reindex import reindex
from service.errors import FaceIdError
from service.vision.embedders.registry import embedding_dim

from . import keys

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def _print(line: dict[str, Any]) -> None:
    print(json.dumps(line))


def cmd_import(recognizer: Recognizer, folder: Path) -> int:
    ok = failed = skipped = 0
    for person_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        images = [p for p in sorted(person_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            continue
        person_id = person_dir.name
        if recognizer.store.get_person(person_id) is not None:
            skipped += 1
            _print({"person_id": person_id, "status": "exists"})
            continue
        try:
            person, faces = recognizer.enroll(images=[p.read_bytes() for p in images],
                                              name=person_id.replace("_", " "), person_id=person_id)
            ok += 1
            _print({"person_id": person.id, "status": "registered", "faces": len(faces)})
        except FaceIdError as exc:
            failed += 1
            _print({"person_id": person_id, "status": "failed", "code": exc.code, "message": exc.message,
                    "details": exc.details})
    print(json.dumps({"registered": ok, "failed": failed, "already_there": skipped}), file=sys.stderr)
    return 0 if failed == 0 else 1


def cmd_reindex(source_model: str, source_dim: int | None) -> int:
    """Embed every stored crop of ``source_model`` with the configured model: a model change without asking
    anyone for a new selfie."""
    settings = load_settings()
    pipeline = build_pipeline(settings).prepare()
    dim = source_dim or embedding_dim(settings, source_model)
    # One database and index client for both stores: the data dir lock allows one per process. The source
    # store is opened without the one-model check: it still holds another model's people, which is the point.
    source = open_store(settings, source_model, dim, only_model=False)
    try:
        target = source.for_model(pipeline.embedder.model_id, pipeline.embedder.dim,
                                  index_centre(settings.index_centres_file, pipeline.embedder.model_id))
        result = reindex(pipeline, source, target, _print)
    finally:
        source.close()
    print(json.dumps({"reindexed": result.moved, "without_crops": result.without_crops,
                      "source_dropped": result.source_dropped}), file=sys.stderr)
    if not result.source_dropped:
        print(f"kept the {source_model} store: {result.without_crops} person(s) have no stored crop to re-embed; "
              f"delete them or have them enroll again, then run reindex again", file=sys.stderr)
        return 1
    return 0


def cmd_migrate() -> int:
    """Move every model's people from the Chroma-only format into the records database and the index."""
    settings = load_settings()
    moved = migrate(settings, _print)
    print(json.dumps({"migrated": moved}), file=sys.stderr)
    return 0


def cmd_upkeep(command: str) -> int:
    """repair: reconcile the index with the records. rebuild-index: a new generation from the records (new
    HNSW settings apply; every instance follows the switch). compact: erasures final on disk."""
    settings = load_settings()
    model_id = settings.model
    store = open_store(settings, model_id, embedding_dim(settings, model_id))
    try:
        if command == "rebuild-index":
            print(json.dumps(store.rebuild(_print)))
        elif command == "compact":
            print(json.dumps(store.compact()))
        else:
            print(json.dumps({"model": model_id, **store.reconcile()}))
    finally:
        store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m enroll", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_import = sub.add_parser("import", help="register one person per sub-folder")
    p_import.add_argument("folder", type=Path)
    p_reindex = sub.add_parser("reindex", help="re-embed stored crops of another model id")
    p_reindex.add_argument("--from", dest="source", required=True, help="the model id the store was built with")
    p_reindex.add_argument("--dim", type=int, default=None,
                           help="that model's embedding size (default: known from the model id)")
    sub.add_parser("migrate", help="move a Chroma-only data dir into the records database")
    sub.add_parser("repair", help="make the vector index match the records")
    sub.add_parser("rebuild-index", help="a new index generation from the records, while serving")
    sub.add_parser("compact", help="make erasures final on disk now")
    keys.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        if args.command == "reindex":
            return cmd_reindex(args.source, args.dim)
        if args.command == "keys":
            return keys.run(args)
        if args.command == "migrate":
            return cmd_migrate()
        if args.command in ("repair", "rebuild-index", "compact"):
            return cmd_upkeep(args.command)
        if not args.folder.is_dir():
            parser.error(f"{args.folder} is not a folder")
        recognizer = build_recognizer(load_settings())
        try:
            return cmd_import(recognizer, args.folder)
        finally:
            recognizer.close()
    except FaceIdError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
