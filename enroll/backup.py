"""``enroll export`` / ``enroll restore``: the whole identity store in one encrypted file.

The file: ``FACEIDBK``, a length-prefixed JSON header in clear (format version, the scrypt parameters and
salt, the nonce prefix; no counts, names or ids), then the payload — zlib-compressed JSON lines (a ``meta``
line, every row, an ``end`` line with the counts) — sealed in 1 MiB segments with AES-256-GCM: each segment's
nonce holds its position and whether it is the last, and every segment authenticates the header, so a
segment reordered, dropped, cut off or changed, or a changed header, fails to open (the STREAM construction).
The key comes from a passphrase or a key file's bytes through scrypt. A wrong one fails on the first segment,
before anything is written; a file damaged further on fails inside the restore's single transaction, which
then writes nothing.
"""
from __future__ import annotations

import base64
import getpass
import json
import os
import struct
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from service.core.records import now_iso

MAGIC = b"FACEIDBK"
FORMAT_VERSION = 1
SEGMENT = 1 << 20
LAST = 0x80000000
PASSPHRASE_ENV = "ENROLL_PASSPHRASE"


class BackupError(Exception):
    """A backup that cannot be read or written: wrong passphrase, damaged file, unknown format."""


def secret(*, key_file: Path | None, passphrase_env: str, confirm: bool) -> bytes:
    """The key file's bytes, else the passphrase from the environment, else asked for on the terminal."""
    if key_file is not None:
        data = key_file.read_bytes()
        if len(data) < 16:
            raise BackupError(f"{key_file}: a key file must hold at least 16 bytes (e.g. `head -c 32 /dev/urandom`)")
        return data
    phrase = os.environ.get(passphrase_env, "")
    if not phrase:
        if not sys.stdin.isatty():
            raise BackupError(f"give a passphrase in {passphrase_env} or a --key-file")
        phrase = getpass.getpass("backup passphrase: ")
        if confirm and getpass.getpass("again: ") != phrase:
            raise BackupError("the passphrases differ")
    if len(phrase) < 8:
        raise BackupError("the passphrase must have at least 8 characters")
    return phrase.encode()


def _key(secret_bytes: bytes, kdf: dict[str, Any]) -> bytes:
    return Scrypt(salt=base64.b64decode(kdf["salt"]), length=32, n=int(kdf["n"]), r=int(kdf["r"]),
                  p=int(kdf["p"])).derive(secret_bytes)


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", counter, 1 if last else 0)


class SealedWriter:
    """Compresses and seals what is written, a segment at a time."""

    def __init__(self, out: IO[bytes], secret_bytes: bytes) -> None:
        kdf = {"name": "scrypt", "n": 2 ** 15, "r": 8, "p": 1, "salt": base64.b64encode(os.urandom(16)).decode()}
        self._prefix = os.urandom(7)
        header = json.dumps({"format": "faceid-backup", "version": FORMAT_VERSION, "kdf": kdf,
                             "cipher": "AES-256-GCM", "segment": SEGMENT,
                             "nonce_prefix": base64.b64encode(self._prefix).decode()}).encode()
        self._aad = MAGIC + struct.pack(">I", len(header)) + header
        out.write(self._aad)
        self._out, self._aead = out, AESGCM(_key(secret_bytes, kdf))
        self._zip, self._buffer, self._counter = zlib.compressobj(6), bytearray(), 0

    def write(self, data: bytes) -> None:
        self._buffer += self._zip.compress(data)
        while len(self._buffer) > SEGMENT:  # keep something back: the last segment is sealed as the last
            self._seal(bytes(self._buffer[:SEGMENT]), last=False)
            del self._buffer[:SEGMENT]

    def close(self) -> None:
        self._buffer += self._zip.flush()
        while len(self._buffer) > SEGMENT:
            self._seal(bytes(self._buffer[:SEGMENT]), last=False)
            del self._buffer[:SEGMENT]
        self._seal(bytes(self._buffer), last=True)

    def _seal(self, plain: bytes, *, last: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._prefix, self._counter, last), plain, self._aad)
        self._out.write(struct.pack(">I", len(sealed) | (LAST if last else 0)) + sealed)
        self._counter += 1


class SealedReader:
    """Opens a sealed file: ``lines()`` yields the payload's JSON lines, every segment authenticated."""

    def __init__(self, source: IO[bytes], secret_bytes: bytes) -> None:
        magic = source.read(len(MAGIC))
        if magic != MAGIC:
            raise BackupError("not a backup made by `enroll export`")
        (size,) = struct.unpack(">I", _exactly(source, 4))
        header_bytes = _exactly(source, size)
        try:
            header = json.loads(header_bytes)
            if header.get("format") != "faceid-backup":
                raise ValueError
        except ValueError:
            raise BackupError("not a backup made by `enroll export`") from None
        if header.get("version") != FORMAT_VERSION:
            raise BackupError(f"backup format version {header.get('version')}; this version reads "
                              f"{FORMAT_VERSION}")
        self._aad = MAGIC + struct.pack(">I", size) + header_bytes
        self._prefix = base64.b64decode(header["nonce_prefix"])
        self._source, self._aead = source, AESGCM(_key(secret_bytes, header["kdf"]))
        self._counter, self._done = 0, False
        self._unzip = zlib.decompressobj()
        self._first = self._open_next()  # a wrong passphrase fails here, before anything is written

    def _open_next(self) -> bytes:
        head = self._source.read(4)
        if len(head) < 4:
            raise BackupError("the backup is cut short (no last segment)")
        (word,) = struct.unpack(">I", head)
        last, size = bool(word & LAST), word & ~LAST
        sealed = _exactly(self._source, size)
        try:
            plain = self._aead.decrypt(_nonce(self._prefix, self._counter, last), sealed, self._aad)
        except InvalidTag:
            if self._counter == 0:
                raise BackupError("wrong passphrase or key file (or the backup is damaged)") from None
            raise BackupError(f"the backup is damaged (segment {self._counter} fails its check)") from None
        self._counter += 1
        self._done = last
        return plain

    def _plain(self) -> Iterator[bytes]:
        yield self._unzip.decompress(self._first)
        while not self._done:
            yield self._unzip.decompress(self._open_next())
        if self._source.read(1):
            raise BackupError("the backup has data after its last segment")
        yield self._unzip.flush()

    def lines(self) -> Iterator[dict[str, Any]]:
        pending = b""
        for chunk in self._plain():
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield json.loads(line)
        if pending.strip():
            yield json.loads(pending)


def _exactly(source: IO[bytes], size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise BackupError("the backup is cut short")
    return data


def export(engine_rows: Iterator[tuple[str, tuple[Any, ...]]], out_path: Path, secret_bytes: bytes,
           meta: dict[str, Any], *, overwrite: bool = False) -> dict[str, int]:
    """Write the snapshot's rows to ``out_path`` (owner-only, complete or not there at all)."""
    from service.store.snapshot import BY_NAME, binary_columns, columns

    if out_path.exists() and not overwrite:
        raise BackupError(f"{out_path} exists (--force replaces it)")
    tmp = out_path.with_name(f".{out_path.name}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    counts = {name: 0 for name in BY_NAME}
    try:
        with os.fdopen(fd, "wb") as f:
            writer = SealedWriter(f, secret_bytes)
            layout = {name: columns(t) for name, t in BY_NAME.items()}
            writer.write(_line({"meta": {**meta, "format_version": FORMAT_VERSION, "created_at": now_iso(),
                                         "columns": layout}}))
            binaries = {name: [c in binary_columns(t) for c in columns(t)] for name, t in BY_NAME.items()}
            for name, row in engine_rows:
                values = [base64.b64encode(v).decode() if is_bin and v is not None else v
                          for v, is_bin in zip(row, binaries[name])]
                writer.write(_line({"t": name, "r": values}))
                counts[name] += 1
            writer.write(_line({"end": counts}))
            writer.close()
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return counts


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def rows_of(lines: Iterator[dict[str, Any]], meta: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The backup's rows as column dicts for ``snapshot.restore``; checks the counts at the end, so a file
    that stops early fails (and the restore writes nothing)."""
    from service.store.snapshot import BY_NAME, binary_columns

    layout: dict[str, list[str]] = meta["columns"]
    binaries = {name: binary_columns(t) for name, t in BY_NAME.items()}
    seen = {name: 0 for name in layout}
    for line in lines:
        if "end" in line:
            if line["end"] != seen:
                raise BackupError(f"the backup's counts do not match its rows ({seen} != {line['end']})")
            return
        name = line["t"]
        if name not in BY_NAME:
            raise BackupError(f"unknown table {name!r} in the backup")
        row = dict(zip(layout[name], line["r"]))
        for column in binaries[name]:
            if row.get(column) is not None:
                row[column] = base64.b64decode(row[column])
        seen[name] += 1
        yield name, {k: v for k, v in row.items() if k in BY_NAME[name].c}
    raise BackupError("the backup ends without its end record")
