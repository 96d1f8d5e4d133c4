"""Bulk operations on the face store, through the same recognizer and gallery the service uses.

    python -m enroll import PHOTOS_DIR      # one sub-folder per person: folder name = person id and name
    python -m enroll reindex --from MODEL   # re-embed stored face crops of another model id with the current one

With the embedded store, stop the service first: the data dir is locked by one process at a time.
Each person is all-or-nothing, exactly like POST /v1/persons; failures are reported and the run goes on.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

from service.config import load_settings
from service.embedder import create_embedder
from service.errors import FaceIdError
from service.gallery import Gallery, NewFace
from service.recognizer import Recognizer

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def cmd_import(recognizer: Recognizer, folder: Path) -> int:
    ok = failed = skipped = 0
    for person_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        images = [p for p in sorted(person_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            continue
        person_id = person_dir.name
        if recognizer.gallery.get_person(person_id) is not None:
            skipped += 1
            print(json.dumps({"person_id": person_id, "status": "exists"}))
            continue
        try:
            person, faces = recognizer.enroll(images=[p.read_bytes() for p in images],
                                              name=person_id.replace("_", " "), person_id=person_id)
            ok += 1
            print(json.dumps({"person_id": person.id, "status": "registered", "faces": len(faces)}))
        except FaceIdError as exc:
            failed += 1
            print(json.dumps({"person_id": person_id, "status": "failed", "code": exc.code,
                              "message": exc.message, "details": exc.details}))
    print(json.dumps({"registered": ok, "failed": failed, "already_there": skipped}), file=sys.stderr)
    return 0 if failed == 0 else 1


def cmd_reindex(recognizer: Recognizer, source_model: str, source_dim: int) -> int:
    """Embed every stored crop of ``source_model`` with the configured model: a model change without
    asking anyone for a new selfie. Persons without stored crops cannot be carried over and are listed; the
    old model's store is erased only when everyone moved."""
    from PIL import Image

    settings = recognizer.settings
    # One client for both galleries: the data dir lock allows one per process.
    source = Gallery.open(model_id=source_model, dim=source_dim, data_dir=settings.data_dir,
                          chroma_url=settings.chroma_url)
    target = Gallery(source.client, recognizer.embedder.model_id, recognizer.embedder.dim)
    moved = missing = 0
    offset = 0
    try:
        while True:
            people, total = source.list_persons(limit=100, offset=offset)
            if not people:
                break
            offset += len(people)
            for person in people:
                faces = []
                for stored in source.faces_of(person.id):
                    crop = source.face_crop(person.id, stored.id)
                    if crop is None:
                        continue
                    # Re-detect in the stored crop: each model aligns from its own box and landmarks.
                    rgb = np.asarray(Image.open(io.BytesIO(crop)).convert("RGB"))
                    found = recognizer.detector.detect(rgb)
                    if not found:
                        print(json.dumps({"person_id": person.id, "face_id": stored.id, "status": "skipped",
                                          "why": "no face found again in the stored crop"}))
                        continue
                    faces.append(NewFace(embedding=recognizer.embedder.get(rgb, found[:1])[0], box=stored.box,
                                         quality=stored.quality, crop_jpeg=crop))
                if not faces or target.get_person(person.id) is not None:
                    missing += not faces
                    print(json.dumps({"person_id": person.id, "status": "skipped",
                                      "why": "no stored crops" if not faces else "already in target"}))
                    continue
                target.create_person(person_id=person.id, name=person.name, metadata=person.metadata, faces=faces)
                moved += 1
        # Everyone moved: the old vectors are biometric data nobody uses any more, and while they exist the
        # service refuses to start (a store holding another model's people). Otherwise keep them.
        dropped = missing == 0
        if dropped:
            source.drop()
    finally:
        source.close()
    print(json.dumps({"reindexed": moved, "without_crops": missing, "source_dropped": dropped}), file=sys.stderr)
    if not dropped:
        print(f"kept the {source_model} store: {missing} person(s) have no stored crop to re-embed; delete them "
              f"or have them enroll again, then run reindex again", file=sys.stderr)
        return 1
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
    args = parser.parse_args(argv)
    try:
        # reindex opens the store itself: the configured model's gallery alone would refuse a store that
        # still holds another model's people (which is the point of reindexing).
        recognizer = Recognizer(load_settings(), with_store=args.command == "import").prepare()
        try:
            if args.command == "import":
                if not args.folder.is_dir():
                    parser.error(f"{args.folder} is not a folder")
                return cmd_import(recognizer, args.folder)
            dim = args.dim or create_embedder(recognizer.settings, args.source).dim
            return cmd_reindex(recognizer, args.source, dim)
        finally:
            recognizer.close()
    except FaceIdError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
