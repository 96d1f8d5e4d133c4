"""Settings: ``config/faceid.toml`` overlaid by ``FACEID_*`` environment variables, validated once at start.

Every tunable lives in one section of ``Settings`` below and nowhere else, and each part of the service is
handed the section it uses. Outside the code a setting has one flat name (``index_timeout_s``, which is
``Settings.store.index_timeout_s``): a key ``foo_bar`` in the TOML file is overridden by the environment
variable ``FACEID_FOO_BAR``. An unknown key (in the file or as a
``FACEID_*`` variable) or a bad value stops the start with a ``ConfigError`` that names it: a typo must never
silently fall back to a default. ``config/faceid.toml`` documents every setting (a test holds it to that).
"""
from __future__ import annotations

import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from .errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = ROOT / "config" / "faceid.toml"
ENV_PREFIX = "FACEID_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"  # the settings file itself: not a setting
# API keys and the metrics token: long enough that guessing one is hopeless even without the rate limits.
MIN_SECRET_LENGTH = 16


@dataclass(frozen=True)
class Section:
    """A group of settings, handed whole to the part that uses it. Outside the code (the TOML file, the
    ``FACEID_*`` environment, ``load_settings`` overrides) a setting keeps one flat name, unique across
    sections: the section's ``PREFIX`` and the field's name, unless ``FLAT`` names it otherwise."""
    PREFIX: ClassVar[str] = ""
    FLAT: ClassVar[dict[str, str]] = {}

    @classmethod
    def flat_names(cls) -> dict[str, str]:
        """{flat name: field name}."""
        return {cls.FLAT.get(f.name, cls.PREFIX + f.name): f.name for f in fields(cls)}


@dataclass(frozen=True)
class Server(Section):
    # Where the service keeps its state: prepared models, the embedded face store, generated API keys.
    # Biometric data: owner-only. A relative path is taken from the working directory.
    data_dir: Path = Path("var")
    # host:port that `make run` binds gunicorn to.
    bind: str = "127.0.0.1:8000"
    log_level: str = "INFO"
    # On SIGTERM, /readyz answers 503 for this many seconds while requests are still served, so a load balancer
    # stops sending new ones before the workers stop accepting; then in-flight requests finish.
    drain_s: float = 5.0
    # gunicorn worker processes and threads per worker. More than one worker needs a Chroma server.
    workers: int = 1
    threads: int = 4
    # A client must send a request's whole head within this many seconds (no worker thread waits for it),
    # and once a request is served no single read or write may stall longer than the second limit.
    request_head_timeout_s: float = 5.0
    request_read_timeout_s: float = 10.0


@dataclass(frozen=True)
class Recognition(Section):
    # The default is the most accurate model within the 40 ms/face budget on the benchmark (README table):
    # dlib's ResNet and SFace fused, weights chosen by nested cross-validation on LFW.
    model: str = "dlib:0.65+sface:0.35"
    # Extra FaceNet model ids from facenet-pytorch state dict files: {model_id: path}.
    facenet_state_dicts: dict[str, str] = field(default_factory=dict)
    # Embed each face and its mirror image and average them (see bench/README.md for the measured effect).
    flip_tta: bool = True
    # OpenVINO threads for one network call that runs alone (the *wide* compilation; calls that overlap others
    # run on one core each), for the embedders and the detector; 0 uses every core.
    embed_threads: int = 0
    detect_threads: int = 0
    # OpenCV's worker threads (resizing, warping); 0 leaves OpenCV's default, one per core.
    opencv_threads: int = 0
    # Margin around the detected box, in pixels of the 160 px model input (Sandberg's LFW protocol: 32).
    face_margin: int = 32


@dataclass(frozen=True)
class DetectionSettings(Section):
    PREFIX = "detect_"
    # MTCNN's P-Net, R-Net and O-Net score thresholds.
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    # MTCNN runs on a copy whose longest side is at most this; boxes are mapped back to full resolution.
    max_side: int = 640
    # Smallest face MTCNN looks for, in pixels of the (possibly downscaled) detection copy.
    min_face: int = 20
    # Verify, identify and compare need the main face only: their search starts at this fraction of the
    # detection copy's shorter side (the full search follows when it finds nothing). 0 = always the full search.
    probe_face_ratio: float = 0.1


@dataclass(frozen=True)
class Limits(Section):
    max_image_bytes: int = 15 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    # Memory one decode may take (decoder buffer + RGB array): bounds 16-bit and float images, which cost
    # more per pixel than a photo. 384 MiB fits a 50-megapixel RGB photo.
    max_decoded_bytes: int = 384 * 1024 * 1024
    max_request_bytes: int = 64 * 1024 * 1024
    # Images in one register / add-faces request.
    max_images_per_request: int = 10
    # Serialised size of a person's metadata object.
    max_metadata_bytes: int = 4096
    # Faces one request may detect or identify (detect, identify with all_faces): each identified face costs
    # ~13 ms of embedding and its memory, so a crowd photo must not take a worker. 422 too_many_faces past it.
    max_faces_per_request: int = 50


@dataclass(frozen=True)
class Store(Section):
    # Empty: embedded Chroma in <data_dir>/chroma (one process). Else a Chroma server, e.g.
    # http://127.0.0.1:8001, shared by several service instances.
    chroma_url: str = ""
    # Sent to the Chroma server as "Authorization: Bearer <token>" on every request. Chroma 1.x's own
    # `chroma run` does not check it: put an authenticating proxy (or Chroma's hosted service) in front.
    chroma_token: str = field(default="", repr=False)
    # The records database (persons, faces, embeddings, crops). Empty: SQLite in <data_dir>/records.sqlite3
    # (one host). For several workers or hosts: PostgreSQL, e.g. postgresql+psycopg://user:pw@host/faceid.
    database_url: str = ""
    # Erased persons and faces leave bytes in the index files and SQLite's log until compaction: every this
    # many seconds (and at start) when anything was erased. Compaction costs what the files weigh, not a pass
    # over the gallery (README: erasure). 0 = never (then run `enroll compact` yourself).
    compact_interval_s: int = 3600
    # Longest wait for one call to the vector index, and for one database call or lock: past it the request
    # answers 503 store_unavailable, and verify and health, which need neither, keep answering.
    index_timeout_s: float = 5.0
    database_timeout_s: float = 10.0
    # Longest wait, at a serving process's start, for the index to be read into memory (Chroma loads it at the
    # first search; 1M people from a cold disk take several seconds). Past it the start goes on, and searches
    # answer 503 until the load is done. At most 45: gunicorn kills a worker still booting after its 60 s
    # ``timeout`` (config/gunicorn.conf.py).
    index_load_timeout_s: float = 30.0
    # The embedded index refuses writes while its disk has less than this many MiB free (they wait in the
    # outbox and are applied when there is room): embedded Chroma that hits a full disk mid-write can hang.
    index_min_free_mb: int = 64
    # HNSW settings of a new index generation, chosen by measurement on realistic galleries (README: scale): max
    # neighbours (M) and construction ef are fixed when it is created (`enroll rebuild-index` applies new ones);
    # search ef is also given to an existing generation when the store opens it (a Chroma server that already
    # holds that index applies it at its next restart).
    index_hnsw_m: int = 48
    index_hnsw_construction_ef: int = 200
    index_hnsw_search_ef: int = 400
    # Per model id, the mean vector the index centres its vectors on (ranking only: decisions use the raw
    # templates); written by `python -m bench.centre`. A model without an entry is indexed uncentred.
    index_centres_file: Path = ROOT / "bench" / "results" / "centres.json"
    # Keep a small aligned JPEG of each enrolled face (admin thumbnails, re-embedding after a model change).
    store_face_crops: bool = True


@dataclass(frozen=True)
class Decisions(Section):
    # The benchmark's results that calibrate every threshold (written by `make bench-lfw`).
    calibration_file: Path = ROOT / "bench" / "results" / "lfw.json"
    # Verify threshold (cosine). 0 = the calibrated one: threshold_at_far_1e-3 in bench/results/lfw.json.
    verify_threshold: float = 0.0
    # Identify: the chance that a stranger is matched to *anyone* in the gallery (FPIR); the threshold is
    # read for this FPIR and the gallery size from open_set.json beside calibration_file (bench/open_set.py).
    identify_target_far: float = 0.01
    # A new face that matches a different person: "reject" (409) or "allow". Matching means above the
    # open-set threshold for the current gallery size, as identify decides.
    duplicate_policy: str = "reject"
    # Add-faces must match the person's template at verify's threshold (else 422 face_mismatch), so a client
    # key cannot graft someone else's face onto an identity. An admin key may override per request.
    add_faces_must_match: bool = True
    # Client keys see decisions, not scores: verify's match, identify's match above the threshold (no
    # ranked strangers, no gallery size), no other person's id in a 409. Admin keys always see everything.
    least_revealing: bool = True
    default_top_k: int = 5
    max_top_k: int = 50


@dataclass(frozen=True)
class Quality(Section):
    """The enrollment quality gate (service/core/quality.py)."""
    PREFIX = "enroll_"
    min_probability: float = 0.95
    min_face_size: float = 64.0
    min_blur: float = 25.0
    max_yaw: float = 0.45
    max_roll: float = 35.0


@dataclass(frozen=True)
class RateLimits(Section):
    """service/web/limits.py: "N/second|minute|hour", each a moving window."""
    PREFIX = "rate_limit_"
    FLAT = {"enabled": "rate_limits"}
    enabled: bool = True
    # Per API key, every endpoint: a busy mobile backend sends a few requests a second.
    per_key: str = "1200/minute"
    # Per client IP, requests without a valid key (none, or a wrong one): slows down key guessing.
    per_ip: str = "60/minute"
    # Per target person on verify, whatever the key: a real user retries a few times, a hill-climber
    # needs thousands of tries.
    verify_per_person: str = "30/minute"
    # memory:// counts per worker process; redis://host:6379 or memcached://host:11211 share the counts.
    storage_url: str = "memory://"


@dataclass(frozen=True)
class Audit(Section):
    """Who did what to whom, as JSON lines (service/logs.py)."""
    PREFIX = "audit_"
    # A file name in the data dir (or an absolute path); empty = no audit file (decisions still go to the log).
    file: str = "audit.jsonl"
    # Days of audit files kept (one file a day), and of rows in the records database's audit table.
    retention_days: int = 90
    # Also write the audit events to the records database (GET /v1/audit queries them from any worker).
    table: bool = True


@dataclass(frozen=True)
class ApiKeySettings(Section):
    # Comma-separated keys (environment) or lists (TOML), beside the database's keys (service/keys.py).
    # When either is set, the first start creates no keys.
    admin_keys: tuple[str, ...] = field(default=(), repr=False)
    client_keys: tuple[str, ...] = field(default=(), repr=False)
    # A bearer token for GET /metrics (Prometheus's `authorization` setting), so a scraper needs no admin key;
    # empty: /metrics answers admin keys only.
    metrics_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class Settings:
    """Every setting, by section."""
    server: Server = field(default_factory=Server)
    recognition: Recognition = field(default_factory=Recognition)
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    limits: Limits = field(default_factory=Limits)
    store: Store = field(default_factory=Store)
    decisions: Decisions = field(default_factory=Decisions)
    quality: Quality = field(default_factory=Quality)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    audit: Audit = field(default_factory=Audit)
    keys: ApiKeySettings = field(default_factory=ApiKeySettings)

    @property
    def models_dir(self) -> Path:
        return self.server.data_dir / "models"

    def flat(self) -> dict[str, Any]:
        """{flat name: value} of every setting."""
        return {name: getattr(section, attr) for section in self._sections()
                for name, attr in type(section).flat_names().items()}

    def _sections(self) -> list[Section]:
        return [getattr(self, f.name) for f in fields(self)]


def _flat_types() -> dict[str, tuple[str, str, Any]]:
    """{flat name: (section, field, type)} of every setting."""
    out: dict[str, tuple[str, str, Any]] = {}
    for section in fields(Settings):
        cls = typing.get_type_hints(Settings)[section.name]
        hints = typing.get_type_hints(cls)
        for flat, attr in cls.flat_names().items():
            out[flat] = (section.name, attr, hints[attr])
    return out


def _build(values: Mapping[str, Any]) -> Settings:
    """Settings from {flat name: converted value}; a setting left out keeps its default."""
    by_section: dict[str, dict[str, Any]] = {}
    for flat, value in values.items():
        section, attr, _ = FLAT_SETTINGS[flat]
        by_section.setdefault(section, {})[attr] = value
    hints = typing.get_type_hints(Settings)
    return Settings(**{name: hints[name](**kwargs) for name, kwargs in by_section.items()})


FLAT_SETTINGS = _flat_types()


def coerce(key: str, typ: Any, value: Any) -> Any:
    """A TOML or environment value as type ``typ`` (pydantic's conversion), or a ConfigError naming ``key``.
    An environment variable is one string: a list or tuple is written comma-separated, a table as
    ``k=v,k2=v2``."""
    origin = typing.get_origin(typ)
    if isinstance(value, str) and origin in (tuple, list):
        value = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, str) and origin is dict:
        pairs = [p.partition("=") for p in value.split(",") if p.strip()]
        value = {k.strip(): v.strip() for k, _, v in pairs}
    if isinstance(value, bool) and typ in (int, float):
        raise ConfigError(f"invalid value for {key}: {value!r} (expected a number)", details={"key": key})
    try:
        found = TypeAdapter(typ).validate_python(value)
    except PydanticValidationError as exc:
        why = exc.errors()[0]["msg"]
        raise ConfigError(f"invalid value for {key}: {value!r} ({why})", details={"key": key}) from None
    return found.expanduser() if isinstance(found, Path) else found


def load_settings(config_file: Path | None = None, env: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Settings from the TOML file, then the environment, then keyword overrides (tests use those)."""
    env = os.environ if env is None else env
    path = Path(env.get(CONFIG_ENV, config_file or DEFAULT_CONFIG_FILE))
    raw: dict[str, Any] = {}
    if CONFIG_ENV in env and not path.is_file():  # named on purpose: a typo must not fall back to defaults
        raise ConfigError(f"{CONFIG_ENV} names {path}, which is not a file", details={"key": CONFIG_ENV})
    if path.is_file():
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    known = {name: typ for name, (_, _, typ) in FLAT_SETTINGS.items()}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"unknown settings in {path}: {', '.join(unknown)}", details={"keys": unknown})
    unknown_env = sorted(k for k in env if k.startswith(ENV_PREFIX) and k != CONFIG_ENV
                         and k[len(ENV_PREFIX):].lower() not in known)
    if unknown_env:
        raise ConfigError(f"unknown settings in the environment: {', '.join(unknown_env)}",
                          details={"keys": unknown_env})
    values: dict[str, Any] = {}
    for name, typ in known.items():
        if name in raw:
            values[name] = coerce(name, typ, raw[name])
        env_value = env.get(ENV_PREFIX + name.upper())
        if env_value is not None:
            values[name] = coerce(ENV_PREFIX + name.upper(), typ, env_value)
    for name, value in overrides.items():
        if name not in known:
            raise ConfigError(f"unknown setting {name}")
        values[name] = coerce(name, known[name], value)
    settings = _build(values)
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    """Every value in its range, and the combinations a deployment can run; the first problem is named by
    the setting's flat name, the one the operator wrote."""
    def need(ok: bool, key: str, why: str) -> None:
        if not ok:
            raise ConfigError(f"invalid {key}: {why}", details={"key": key})

    server, recognition, detection, limits = s.server, s.recognition, s.detection, s.limits
    store, decisions, keys = s.store, s.decisions, s.keys
    host, _, port = server.bind.rpartition(":")
    need(bool(host) and port.isdigit() and 0 < int(port) < 65536, "bind", "expected host:port")
    need(1 <= server.threads <= 64, "threads", "1..64")
    need(0 < server.request_head_timeout_s <= 300 and 0 < server.request_read_timeout_s <= 600,
         "request_head_timeout_s", "seconds: head 0-300, read 0-600")
    need(server.drain_s >= 0, "drain_s", "seconds, 0 = stop at once")
    need(server.log_level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"), "log_level", "DEBUG/INFO/WARNING/ERROR")
    need(server.workers == 1 or (server.workers > 1 and bool(store.chroma_url) and bool(store.database_url)),
         "workers", "the embedded store allows one worker process; set chroma_url and database_url to run more")

    need(0 <= recognition.face_margin < 100, "face_margin", "0..99 pixels")
    need(recognition.embed_threads >= 0 and recognition.detect_threads >= 0, "embed_threads", "must be >= 0")
    need(recognition.opencv_threads >= 0, "opencv_threads", "must be >= 0")
    need(detection.max_side >= 160, "detect_max_side", "must be at least 160")
    need(detection.min_face >= 12, "detect_min_face", "must be at least 12 (MTCNN's smallest scale)")
    need(0 <= detection.probe_face_ratio < 1, "detect_probe_face_ratio", "a fraction in [0, 1)")
    need(len(detection.thresholds) == 3 and all(0 < t < 1 for t in detection.thresholds),
         "detect_thresholds", "three values in (0, 1)")

    need(limits.max_image_bytes > 0 and limits.max_image_pixels > 0, "max_image_bytes", "limits must be positive")
    need(1 <= limits.max_images_per_request <= 100, "max_images_per_request", "1..100")
    need(1 <= limits.max_faces_per_request <= 1000, "max_faces_per_request", "1..1000")
    need(limits.max_metadata_bytes >= 2, "max_metadata_bytes", "must be positive")

    need(store.compact_interval_s >= 0, "compact_interval_s", "seconds, 0 = never")
    need(0 < store.index_timeout_s <= 300, "index_timeout_s", "seconds, 0-300")
    need(0 < store.index_load_timeout_s <= 45, "index_load_timeout_s", "seconds, 0-45")
    need(store.index_min_free_mb >= 0, "index_min_free_mb", "MiB, 0 or more")
    need(0 < store.database_timeout_s <= 300, "database_timeout_s", "seconds, 0-300")
    need(4 <= store.index_hnsw_m <= 128, "index_hnsw_m", "4..128")
    need(10 <= store.index_hnsw_construction_ef <= 2000 and 10 <= store.index_hnsw_search_ef <= 2000,
         "index_hnsw_construction_ef", "10..2000 (and index_hnsw_search_ef too)")
    need(not (store.chroma_url and not store.chroma_url.startswith(("http://", "https://"))), "chroma_url",
         "expected http(s)://host:port")
    need(not store.database_url.startswith("postgres:"), "database_url",
         "postgres:// is not a SQLAlchemy URL: write postgresql+psycopg://user:password@host:5432/db")
    need(not store.database_url or store.database_url.startswith(("sqlite", "postgresql")), "database_url",
         "expected sqlite:///path or postgresql+psycopg://user:password@host:5432/db")

    need(0 < decisions.identify_target_far < 1, "identify_target_far", "a probability in (0, 1)")
    need(0 <= decisions.verify_threshold < 1, "verify_threshold", "a cosine similarity in [0, 1); 0 = calibrated")
    need(decisions.duplicate_policy in ("reject", "allow"), "duplicate_policy", "reject or allow")
    need(1 <= decisions.default_top_k <= decisions.max_top_k <= 1000, "default_top_k",
         "1 <= default_top_k <= max_top_k <= 1000")

    need(s.audit.retention_days >= 1, "audit_retention_days", "at least 1 day")
    for key, rate in (("rate_limit_per_key", s.rate_limits.per_key), ("rate_limit_per_ip", s.rate_limits.per_ip),
                      ("rate_limit_verify_per_person", s.rate_limits.verify_per_person)):
        need(_is_rate(rate), key, 'a rate such as "60/minute"')
    need(not keys.metrics_token or len(keys.metrics_token) >= MIN_SECRET_LENGTH, "metrics_token",
         f"at least {MIN_SECRET_LENGTH} characters")
    for key, secrets in (("admin_keys", keys.admin_keys), ("client_keys", keys.client_keys)):
        need(all(len(k) >= MIN_SECRET_LENGTH for k in secrets), key,
             f"every API key needs at least {MIN_SECRET_LENGTH} characters")


def _is_rate(text: str) -> bool:
    from limits import parse_many
    try:
        return bool(parse_many(text))
    except ValueError:
        return False


def replace(settings: Settings, **changes: Any) -> Settings:
    """A validated copy with some settings (by flat name) changed."""
    unknown = sorted(set(changes) - set(FLAT_SETTINGS))
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(unknown)}", details={"keys": unknown})
    new = _build({**settings.flat(), **{name: coerce(name, FLAT_SETTINGS[name][2], value)
                                        for name, value in changes.items()}})
    _validate(new)
    return new
