"""Bulk operations on the face store, through the same recognizer and store the service uses (``compose``).

    python -m enroll import DIR|--csv FILE --url URL   # through a running service's API (ENROLL_API_KEY)
    python -m enroll import DIR|--csv FILE             # directly on the records database
    python -m enroll export FILE                       # an encrypted, consistent backup, while serving
    python -m enroll restore FILE                      # into an empty store, whose index is then rebuilt
    python -m enroll reindex --from MODEL   # re-embed stored face crops of another model id with the current one
    python -m enroll migrate                # move a data dir of the Chroma-only format into the records database
    python -m enroll repair                 # make the vector index match the records (a full scan, on demand)
    python -m enroll rebuild-index          # a new index generation from the records, while the service serves
    python -m enroll compact                # make erasures final on disk now (the service does it hourly)
    python -m enroll keys list|create|revoke|rotate   # API keys (see enroll/keys.py)

import: DIR has one sub-folder per person (folder name = person id; name with _ as spaces), or a CSV names
person_id, path[, name]. Each photo gets an outcome; a person is enrolled with the photos that pass
(--all-or-nothing: as POST /v1/persons, one refused photo refuses the person). Photos a person already has
(by sha256) are skipped, so a re-run, or one after a kill, adds only what is new. Rejected photos go to a CSV
report. Exit status: 0 when the run went through (rejected photos included), 1 on a failure of the service or
store, 2 on bad arguments or configuration, 130 on Ctrl-C (the requests in flight finish first).

With --url the import goes through the service, on every deployment, while it serves. Without it, with the
embedded store, stop the service first: the data dir is locked by one process at a time. With PostgreSQL and a
Chroma server, every command runs while the instances serve: a rebuild fills the next index generation beside
the current one and every instance follows the switch.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from service.config import load_settings
from service.errors import FaceIdError

from . import keys
from .backup import BackupError
from .importer import Failure, Importer, Outcome, Progress, from_csv, from_folder, write_report

# Concurrent requests of an import through the API. A registration is not all CPU: after its commit it waits
# ~40 ms for the index write (embedded Chroma), and for the registration section, so two requests leave the two
# cores of a default service (one worker, OpenVINO releasing the GIL) partly idle; a third fills them. Three of
# the worker's four threads: one stays free for the traffic the service serves meanwhile.
DEFAULT_JOBS = 3


def _print(line: dict[str, Any]) -> None:
    print(json.dumps(line), flush=True)


def cmd_import(args: argparse.Namespace) -> int:
    """One outcome line per photo on stdout, progress and the summary on stderr, the rejected photos in a
    CSV report."""
    from .backends import ApiBackend, DirectBackend

    source: Path = args.csv or args.folder
    people = from_csv(args.csv) if args.csv else from_folder(args.folder)
    report: Path = args.report or source.parent / f"{source.stem}-rejected.csv"
    backend: ApiBackend | DirectBackend
    if args.url:
        key = args.key or os.environ.get("ENROLL_API_KEY", "")
        if not key:
            print("error: give the API key in ENROLL_API_KEY (or --key)", file=sys.stderr)
            return 2
        backend = ApiBackend(args.url, key, max_images=args.max_images)
        backend.check()
    else:
        from service.compose import build_recognizer
        try:
            backend = DirectBackend(build_recognizer(load_settings()))
        except FaceIdError as exc:
            if "lock" in exc.details:  # the embedded store of a running service
                exc.message += "; while the service runs, import through it: --url URL"
            raise
    outcomes: list[Outcome] = []

    def emit(outcome: Outcome) -> None:
        outcomes.append(outcome)
        _print(outcome.line())
    progress = Progress(sum(len(p) for p in people), tty=sys.stderr.isatty(),
                        write=lambda line: print(line, file=sys.stderr, flush=True), every_s=args.progress_every)
    importer = Importer(backend, jobs=args.jobs, all_or_nothing=args.all_or_nothing, emit=emit, progress=progress,
                        source=source.name)
    try:
        summary = importer.run(people)
    finally:
        backend.close()
    rejected = write_report(report, outcomes)
    result = summary.as_dict()
    print(json.dumps({**result, "report": str(report), "run_id": importer.run_id}), file=sys.stderr)
    print(f"{result['done']} of {result['photos']} photos in {result['seconds']} s ({result['photos_per_s']}/s): "
          f"{result['enrolled']} enrolled, {result['added']} added, {result['already_there']} already there, "
          f"{rejected} not enrolled (see {report})"
          + (" — interrupted; run the same command again to finish" if summary.interrupted else "")
          + (f" — stopped: {summary.failure}" if summary.failure else ""), file=sys.stderr)
    if summary.failure:
        return 1
    return 130 if summary.interrupted else 0


def cmd_export(args: argparse.Namespace) -> int:
    """A consistent snapshot of the records (``store.snapshot``), sealed with a passphrase or key file."""
    from service.compose import records_engine
    from service.store import snapshot

    from .backup import export, secret

    key = secret(key_file=args.key_file, passphrase_env=args.passphrase_env, confirm=True)
    settings = load_settings()
    engine = records_engine(settings)
    try:
        meta = {"source": engine.dialect.name, "configured_model": settings.recognition.model}
        counts = export(snapshot.read(engine), args.file, key, meta, overwrite=args.force)
    finally:
        engine.dispose()
    print(json.dumps({"file": str(args.file), "exported": counts}))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Into an empty store of the configured kind, in one transaction; then each model's index is built from
    the records. The passphrase is checked before the target is touched."""
    from sqlalchemy import func, select

    from service.compose import open_store, records_engine
    from service.store import snapshot
    from service.store.schema import persons

    from .backup import SealedReader, rows_of, secret

    key = secret(key_file=args.key_file, passphrase_env=args.passphrase_env, confirm=False)
    settings = load_settings()
    with args.file.open("rb") as f:
        lines = SealedReader(f, key).lines()  # a wrong passphrase stops here: nothing is opened or written
        meta = next(lines)["meta"]
        engine = records_engine(settings)
        try:
            counts = snapshot.restore(engine, rows_of(lines, meta))
            with engine.connect() as db:
                models = {m: int(size) // 4 for m, size in db.execute(  # float32 templates
                    select(persons.c.model_id, func.max(func.length(persons.c.template)))
                    .group_by(persons.c.model_id))}
        finally:
            engine.dispose()
    indexed = {}
    for model_id, dim in sorted(models.items()):  # the index follows the records: built from the outbox
        store = open_store(settings, model_id, dim, only_model=False)
        try:
            indexed[model_id] = {"persons": store.person_count(), "index_lag": store.index_state().lag}
        finally:
            store.close()
    print(json.dumps({"file": str(args.file), "restored": counts, "models": indexed,
                      "exported_at": meta.get("created_at"), "source": meta.get("source")}))
    if models and settings.recognition.model not in models:
        print(f"note: the backup holds persons of {', '.join(sorted(models))}; this service is configured for "
              f"{settings.recognition.model} (configure that model, or run `python -m enroll reindex --from ...`)",
              file=sys.stderr)
    return 0


def cmd_reindex(source_model: str, source_dim: int | None) -> int:
    """Embed every stored crop of ``source_model`` with the configured model: a model change without asking
    anyone for a new selfie."""
    from service.compose import build_pipeline, index_centre, open_store
    from service.core.reindex import reindex
    from service.vision.embedders.registry import embedding_dim

    settings = load_settings()
    pipeline = build_pipeline(settings).prepare()
    dim = source_dim or embedding_dim(settings, source_model)
    # One database and index client for both stores: the data dir lock allows one per process. The source
    # store is opened without the one-model check: it still holds another model's people, which is the point.
    source = open_store(settings, source_model, dim, only_model=False)
    try:
        target = source.for_model(pipeline.embedder.model_id, pipeline.embedder.dim,
                                  index_centre(settings.store.index_centres_file, pipeline.embedder.model_id))
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
    from service.compose import migrate

    settings = load_settings()
    moved = migrate(settings, _print)
    print(json.dumps({"migrated": moved}), file=sys.stderr)
    return 0


def cmd_upkeep(command: str) -> int:
    """repair: reconcile the index with the records. rebuild-index: a new generation from the records (new
    HNSW settings apply; every instance follows the switch). compact: erasures final on disk."""
    from service.compose import open_store
    from service.vision.embedders.registry import embedding_dim

    settings = load_settings()
    model_id = settings.recognition.model
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
    p_import = sub.add_parser("import", help="enroll people's photos: one sub-folder per person, or a CSV")
    p_import.add_argument("folder", type=Path, nargs="?", help="one sub-folder of photos per person")
    p_import.add_argument("--csv", type=Path, help="a CSV with columns person_id, path (relative to it), name")
    p_import.add_argument("--url", help="the service's base URL: import through its API while it serves")
    p_import.add_argument("--key", help="an API key with the enroll scope (better: ENROLL_API_KEY); an admin "
                                        "key also lets a re-run skip known photos without uploading them")
    p_import.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                          help=f"persons imported at once (default {DEFAULT_JOBS})")
    p_import.add_argument("--all-or-nothing", action="store_true",
                          help="one refused photo refuses the person (as POST /v1/persons)")
    p_import.add_argument("--report", type=Path, help="the CSV of photos not enrolled (default: "
                                                      "<DIR or CSV name>-rejected.csv beside it)")
    p_import.add_argument("--max-images", type=int, default=10,
                          help="photos per registration request: the service's max_images_per_request")
    p_import.add_argument("--progress-every", type=float, default=10.0,
                          help="seconds between progress lines when stderr is not a terminal")
    p_reindex = sub.add_parser("reindex", help="re-embed stored crops of another model id")
    p_reindex.add_argument("--from", dest="source", required=True, help="the model id the store was built with")
    p_reindex.add_argument("--dim", type=int, default=None,
                           help="that model's embedding size (default: known from the model id)")
    for name, text in (("export", "an encrypted, consistent backup of the whole store (while serving)"),
                       ("restore", "a backup into an empty store (SQLite or PostgreSQL); its index is rebuilt")):
        p_backup = sub.add_parser(name, help=text)
        p_backup.add_argument("file", type=Path)
        p_backup.add_argument("--key-file", type=Path, help="a file whose bytes are the secret (>= 16 bytes)")
        p_backup.add_argument("--passphrase-env", default="ENROLL_PASSPHRASE",
                              help="the environment variable holding the passphrase (else it is asked for)")
        if name == "export":
            p_backup.add_argument("--force", action="store_true", help="replace an existing file")
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
        if args.command == "export":
            return cmd_export(args)
        if args.command == "restore":
            if not args.file.is_file():
                parser.error(f"{args.file} is not a file")
            return cmd_restore(args)
        if args.command in ("repair", "rebuild-index", "compact"):
            return cmd_upkeep(args.command)
        if (args.folder is None) == (args.csv is None):
            parser.error("give a folder or --csv FILE")
        if args.folder is not None and not args.folder.is_dir():
            parser.error(f"{args.folder} is not a folder")
        if args.csv is not None and not args.csv.is_file():
            parser.error(f"{args.csv} is not a file")
        if args.jobs < 1 or args.max_images < 1:
            parser.error("--jobs and --max-images must be at least 1")
        return cmd_import(args)
    except FaceIdError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Failure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # a CSV without the columns it needs
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
