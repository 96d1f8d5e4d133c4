"""The trial's yardstick: main's app and a candidate's app on one stub service (the fast tier's models and
memory store, so the same gallery answers both), the same requests to POST /v1/verify and GET /v1/persons
sent to each, and every answer compared (status, JSON body less the request id, Allow/Retry-After headers);
then the two operations of each /openapi.json compared key by key.

    PYTHONPATH=/tmp/trialpkgs:. .venv/bin/python -m docs.trial.harness spectree flask_openapi3 apiflask
"""
from __future__ import annotations

import base64
import importlib
import io
import json
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from service import create_app
from service.config import load_settings
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT, CLIENT_KEY
from tests.fast.conftest import stub_service
from tests.fast.stubs import CALIBRATION, photo
from tests.test_text_fields import SPECIAL

JSON = {"Content-Type": "application/json"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def form(*images: bytes, **fields: Any) -> Callable[[], dict[str, Any]]:
    return lambda: {"data": {**fields, "image": [(io.BytesIO(b), f"{i}.png") for i, b in enumerate(images)]},
                    "content_type": "multipart/form-data"}


def raw(body: bytes | str, content_type: str | None = "application/json") -> Callable[[], dict[str, Any]]:
    return lambda: {"data": body, **({"content_type": content_type} if content_type is not None else {})}


def js(**fields: Any) -> Callable[[], dict[str, Any]]:
    return raw(json.dumps(fields))


def verify_cases(kiosk: dict[str, str], identify_only: dict[str, str]) -> list[tuple[str, dict[str, str], Callable]]:
    ada, other = photo(1, 2), photo(2)
    cases: list[tuple[str, dict[str, str], Callable]] = [
        ("multipart match, client", CLIENT, form(ada, person_id="ada")),
        ("multipart match, admin", ADMIN, form(ada, person_id="ada")),
        ("json match, admin", ADMIN, js(person_id="ada", image=b64(ada))),
        ("json non-match, client", CLIENT, js(person_id="ada", image=b64(other))),
        ("json data URL", CLIENT, js(person_id="ada", image="data:image/png;base64," + b64(ada))),
        ("json images list", CLIENT, js(person_id="ada", images=[b64(ada)])),
        ("json two images", CLIENT, js(person_id="ada", images=[b64(ada), b64(ada)])),
        ("json images not a list", CLIENT, js(person_id="ada", images="abc")),
        ("json bad base64", CLIENT, js(person_id="ada", image="***")),
        ("json image a number", CLIENT, js(person_id="ada", image=12)),
        ("json no image", CLIENT, js(person_id="ada")),
        ("json extra field ignored", CLIENT, js(person_id="ada", image=b64(ada), colour="red")),
        ("unknown id, client (identify scope)", CLIENT, js(person_id="nobody", image=b64(ada))),
        ("unknown id, verify-only key", kiosk, js(person_id="nobody", image=b64(ada))),
        ("no key", {}, js(person_id="ada", image=b64(ada))),
        ("no key, bad body", {}, raw(b"[1, 2]")),
        ("key without verify", identify_only, js(person_id="ada", image=b64(ada))),
        ("wrong key", {"X-API-Key": "nope"}, js(person_id="ada", image=b64(ada))),
        ("Infinity in JSON", CLIENT, raw(b'{"person_id": "a", "threshold": Infinity}')),
        ("NaN threshold JSON", CLIENT,
         raw(b'{"person_id": "ada", "threshold": NaN, "image": "' + b64(ada).encode() + b'"}')),
        ("1e999 threshold", CLIENT, raw(b'{"person_id": "ada", "threshold": 1e999}')),
        ("invalid JSON", CLIENT, raw(b'{"person_id": ')),
        ("JSON not an object", CLIENT, raw(b"[1, 2, 3]")),
        ("JSON null", CLIENT, raw(b"null")),
        ("empty JSON body", CLIENT, raw(b"")),
        ("invalid UTF-8", CLIENT, raw(b'{"person_id": "\xff\xfe"}')),
        ("deep JSON", CLIENT, raw(b'{"person_id": "a", "x": ' + b"[" * 40 + b"]" * 40 + b"}")),
        ("text/plain", CLIENT, raw(b"abc", "text/plain")),
        ("no content type", CLIENT, raw(b"abc", None)),
        ("urlencoded form", CLIENT, raw("person_id=ada", "application/x-www-form-urlencoded")),
        ("urlencoded form, no id", CLIENT, raw("x=1", "application/x-www-form-urlencoded")),
        ("+json media type", CLIENT,
         raw(json.dumps({"person_id": "ada", "image": b64(ada)}), "application/vnd.x+json")),
        ("person_id missing", CLIENT, js(image=b64(ada))),
        ("person_id empty", CLIENT, js(person_id="", image=b64(ada))),
        ("person_id blank", CLIENT, js(person_id="   ", image=b64(ada))),
        ("person_id null", CLIENT, js(person_id=None, image=b64(ada))),
        ("person_id a number", CLIENT, js(person_id=123, image=b64(ada))),
        ("person_id a list", CLIENT, js(person_id=["ada"], image=b64(ada))),
        ("person_id with a slash", CLIENT, js(person_id="a/b", image=b64(ada))),
        ("person_id NUL", CLIENT, js(person_id="a\x00", image=b64(ada))),
        ("person_id lone surrogate", CLIENT, raw(b'{"person_id": "\\ud800", "image": "' + b64(ada).encode() + b'"}')),
        ("person_id 300 chars", CLIENT, js(person_id="a" * 300, image=b64(ada))),
        ("person_id padded", CLIENT, js(person_id="  ada ", image=b64(ada))),
        ("person_id upper case", CLIENT, js(person_id="ADA", image=b64(ada))),
        ("person_id zero-width", CLIENT, js(person_id="\u200b", image=b64(ada))),
        ("threshold string", CLIENT, js(person_id="ada", image=b64(ada), threshold="0.9")),
        ("threshold looser", CLIENT, js(person_id="ada", image=b64(ada), threshold=0.01)),
        ("threshold stricter", ADMIN, js(person_id="ada", image=b64(ada), threshold=0.99)),
        ("threshold bool", CLIENT, js(person_id="ada", image=b64(ada), threshold=True)),
        ("threshold text", CLIENT, js(person_id="ada", image=b64(ada), threshold="abc")),
        ("threshold 2", CLIENT, js(person_id="ada", image=b64(ada), threshold=2)),
        ("threshold null", CLIENT, js(person_id="ada", image=b64(ada), threshold=None)),
        ("multipart threshold", ADMIN, form(ada, person_id="ada", threshold="0.95")),
        ("multipart threshold empty", ADMIN, form(ada, person_id="ada", threshold="")),
        ("multipart threshold nan", CLIENT, form(ada, person_id="ada", threshold="nan")),
        ("multipart threshold 1_0", CLIENT, form(ada, person_id="ada", threshold="1_0")),
        ("multipart person_id 123", CLIENT, form(ada, person_id="123")),
        ("multipart person_id null", CLIENT, form(ada, person_id="null")),
        ("multipart person_id true", CLIENT, form(ada, person_id="true")),
        ("multipart person_id twice", CLIENT, form(ada, person_id=["ada", "bo"])),
        ("multipart no image", CLIENT, form(person_id="ada")),
        ("multipart image as text", CLIENT, lambda: {"data": {"person_id": "ada", "image": "x"},
                                                     "content_type": "multipart/form-data"}),
        ("multipart two images", CLIENT, form(ada, ada, person_id="ada")),
        ("multipart no fields", CLIENT, form(ada)),
        ("multipart no face", CLIENT, form(photo(1, faces=0), person_id="ada")),
        ("multipart not an image", CLIENT, form(b"%PDF-1.4", person_id="ada")),
    ]
    for text in [*SPECIAL, *(t * 2000 for t in SPECIAL[:8])]:  # test_text_fields' characters, as person_id
        cases.append((f"person_id {text[:3]!r}x{len(text)}", CLIENT, js(person_id=text, image=b64(ada))))
        if not any(0xD800 <= ord(c) <= 0xDFFF for c in text):  # a form field is UTF-8: no lone surrogate
            cases.append((f"multipart person_id {text[:3]!r}x{len(text)}", CLIENT, form(ada, person_id=text)))
    return cases


def list_cases() -> list[tuple[str, dict[str, str], str]]:
    return [("first page", ADMIN, ""), ("limit 2", ADMIN, "?limit=2"), ("limit 2 offset 2", ADMIN, "?limit=2&offset=2"),
            ("client key", CLIENT, ""), ("no key", {}, ""), ("no key, bad query", {}, "?limit=0"),
            ("limit 0", ADMIN, "?limit=0"), ("limit ten", ADMIN, "?limit=ten"), ("limit 101", ADMIN, "?limit=101"),
            ("limit 1.5", ADMIN, "?limit=1.5"), ("limit empty", ADMIN, "?limit="), ("limit +3", ADMIN, "?limit=%2B3"),
            ("limit Arabic digit", ADMIN, "?limit=%D9%A3"), ("limit 1_0", ADMIN, "?limit=1_0"),
            ("limit twice", ADMIN, "?limit=1&limit=2"), ("offset -1", ADMIN, "?offset=-1"),
            ("offset 5", ADMIN, "?offset=5"), ("q ad", ADMIN, "?q=ad"), ("q AD", ADMIN, "?q=AD"),
            ("q empty", ADMIN, "?q="), ("q NUL", ADMIN, "?q=%00"), ("q 300", ADMIN, "?q=" + "a" * 300),
            ("q 200 I-dot", ADMIN, "?q=" + "%C4%B0" * 200), ("q surrogate", ADMIN, "?q=%ED%A0%80"),
            ("cursor forged", ADMIN, "?cursor=WyJrIiwgMV0"), ("cursor empty", ADMIN, "?cursor="),
            ("cursor garbage", ADMIN, "?cursor=%%%"), ("unknown limt", ADMIN, "?limt=5"),
            ("two unknown", ADMIN, "?zeta=1&alpha=2"), ("unknown and bad limit", ADMIN, "?limit=0&zz=1"),
            ("limit twice, second bad", ADMIN, "?limit=1&limit=x"),
            *((f"q {t[:3]!r}", ADMIN, f"?q={quote(t.encode('utf-8', 'surrogatepass'), safe='')}") for t in SPECIAL),
            *((f"cursor of {t[:3]!r}", ADMIN, "?cursor=" + base64.urlsafe_b64encode(
                json.dumps(["k", t, t]).encode()).decode().rstrip("=")) for t in SPECIAL)]


def seed(service: Any) -> None:
    for i, (pid, name) in enumerate([("ada", "Ada Lovelace"), ("bo", "Bo"), ("cy", "Cy Adams"), ("di", "Dī"),
                                     ("ed", "Ed"), ("fay", "Fay Ada")]):
        service.recognizer.enroll(images=[photo(i + 1)], name=name, person_id=pid)


def answer(response: Any) -> tuple[Any, ...]:
    body = response.get_json(silent=True)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body["error"].pop("request_id", None)
    return (response.status_code, body if body is not None else response.data[:200],
            response.headers.get("Allow"), response.headers.get("Retry-After"))


def compare_answers(main: Any, trial: Any, kiosk: dict[str, str], identify_only: dict[str, str]) -> list[str]:
    a, b = main.test_client(), trial.test_client()
    differences, sent = [], 0
    for what, headers, kwargs in verify_cases(kiosk, identify_only):
        one, two = (answer(c.post("/v1/verify", headers=headers, **kwargs())) for c in (a, b))
        sent += 1
        if one != two:
            differences.append(f"verify / {what}: main {one[:2]} | trial {two[:2]}")
    cursor = a.get("/v1/persons?limit=2", headers=ADMIN).get_json()["next_cursor"]
    for what, headers, query in [*list_cases(), ("next page", ADMIN, f"?limit=2&cursor={cursor}"),
                                 ("next page with q", ADMIN, f"?limit=2&q=a&cursor={cursor}")]:
        one, two = (answer(c.get("/v1/persons" + query, headers=headers)) for c in (a, b))
        sent += 1
        if one != two:
            differences.append(f"list / {what}: main {one[:2]} | trial {two[:2]}")
    print(f"  {sent} requests, {len(differences)} answers differ")
    return differences


def flatten(value: Any, at: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{at}/{k}"))
        return out or {at: {}}
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{at}/{i}"))
        return out or {at: []}
    return {at: value}


def compare_specs(main: dict[str, Any], lib: dict[str, Any]) -> dict[str, Any]:
    """Key-by-key differences of the two operations (pointers under each operation)."""
    report: dict[str, Any] = {}
    for path, method in (("/v1/verify", "post"), ("/v1/persons", "get")):
        ours = flatten(main["paths"][path][method])
        theirs = flatten(lib.get("paths", {}).get(path, {}).get(method, {}))
        report[f"{method.upper()} {path}"] = {
            "only_main": sorted(k for k in ours if k not in theirs),
            "only_lib": sorted(k for k in theirs if k not in ours),
            "different": sorted(k for k in ours if k in theirs and ours[k] != theirs[k]),
            "same": sum(1 for k in ours if k in theirs and ours[k] == theirs[k]), "main_keys": len(ours)}
        for media in ("application/json", "multipart/form-data"):
            ours = flatten(resolve(main, main["paths"][path][method].get("requestBody", {}), media))
            theirs = flatten(resolve(lib, lib.get("paths", {}).get(path, {}).get(method, {}).get("requestBody", {}),
                                     media))
            if ours != {"": {}} or theirs != {"": {}}:
                report[f"{method.upper()} {path} body {media}"] = {
                    "only_main": sorted(k for k in ours if k not in theirs),
                    "only_lib": sorted(k for k in theirs if k not in ours),
                    "different": sorted(k for k in ours if k in theirs and ours[k] != theirs[k]),
                    "same": sum(1 for k in ours if k in theirs and ours[k] == theirs[k]), "main_keys": len(ours)}
    report["openapi"] = (main["openapi"], lib.get("openapi"))
    return report


def resolve(spec: dict[str, Any], body: dict[str, Any], media: str) -> Any:
    """The request body's schema for ``media``, its top-level $ref followed."""
    schema = body.get("content", {}).get(media, {}).get("schema", {})
    ref = schema.get("$ref", "")
    return spec["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {}) if ref else schema


def settings_for(data_dir: Path, **changes: Any) -> Any:
    calibration = data_dir / "calibration.json"
    calibration.write_text(json.dumps(CALIBRATION))
    return load_settings(env={}, data_dir=str(data_dir), admin_keys=ADMIN_KEY, client_keys=CLIENT_KEY,
                         calibration_file=str(calibration), **{"rate_limits": False, **changes})


def per_person_limit(module: Any) -> tuple[list[int], list[int]]:
    """The per-target-person limit (3/minute): the fourth verify of one id, spelt differently, is 429."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(Path(tmp), rate_limits=True, rate_limit_verify_per_person="3/minute")
        service = stub_service(settings)
        seed(service)
        main, trial = create_app(settings, service=service), module.make_app(settings, service)
        out = []
        for app in (main, trial):
            c = app.test_client()
            out.append([c.post("/v1/verify", headers=CLIENT, **js(person_id=pid, image=b64(photo(1)))()).status_code
                        for pid in ("ada", " ada", "ada ", "ada", "bo")])
        service.close()
        return out[0], out[1]


def main(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(Path(tmp))
        service = stub_service(settings)
        seed(service)
        main_app = create_app(settings, service=service)
        logging.disable(logging.INFO)  # the request log of every request
        admin = main_app.test_client()
        kiosk = {"X-API-Key": admin.post("/v1/keys", json={"name": "kiosk", "scopes": ["verify"]},
                                         headers=ADMIN).get_json()["secret"]}
        identify_only = {"X-API-Key": admin.post("/v1/keys", json={"name": "id", "scopes": ["identify"]},
                                                 headers=ADMIN).get_json()["secret"]}
        main_spec = admin.get("/openapi.json").get_json()
        results = {}
        for name in names:
            module = importlib.import_module(f"docs.trial.trial_{name}")
            print(f"== {name}")
            trial = module.make_app(settings, service)
            for endpoint in ("matching.verify", "persons.list_persons"):  # the ported views answer, not main's
                view = trial.view_functions[endpoint]
                while hasattr(view, "__wrapped__"):
                    view = view.__wrapped__
                assert view.__module__ == module.__name__, (endpoint, view.__module__)
            differences = compare_answers(main_app, trial, kiosk, identify_only)
            for line in differences:
                print("   ", line)
            spec = compare_specs(main_spec, module.library_spec(trial))
            for op, found in spec.items():
                if op == "openapi":
                    print(f"  openapi version main {found[0]}, library {found[1]}")
                    continue
                print(f"  {op}: {found['same']}/{found['main_keys']} of main's keys equal; "
                      f"{len(found['only_main'])} missing, {len(found['different'])} different, "
                      f"{len(found['only_lib'])} added")
            limit = per_person_limit(module)
            print(f"  per-person limit: main {limit[0]}, trial {limit[1]}")
            results[name] = {"differences": differences, "spec": spec, "limit": limit}
        service.close()
    out = Path("/tmp/trial-results.json")
    out.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str))
    print(f"details: {out}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["spectree"])
