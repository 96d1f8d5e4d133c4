"""``python -m enroll keys``: API keys from the command line, against the records database the service uses
(safe while it runs: a revocation holds from the service's next request).

    python -m enroll keys list [--all]
    python -m enroll keys create --name "kiosk 3" --scope verify [--scope identify] [--expires-in 90d]
    python -m enroll keys revoke KEY_ID [--grace 1h]
    python -m enroll keys rotate KEY_ID [--grace 1h]

A new key's secret is printed once, in the JSON line on stdout; only its hash is kept. Creating a key here
before the first start means the service generates none.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re

from service.config import load_settings
from service.core.keys import SCOPES, ApiKey

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> int:
    """``90d``, ``12h``, ``30m``, ``45s`` or plain seconds."""
    found = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not found:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90d, 12h, 30m or 45s")
    return int(found[1]) * _UNITS[found[2] or "s"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="list, create, revoke or rotate API keys")
    keys = p.add_subparsers(dest="keys_command", required=True)
    p_list = keys.add_parser("list", help="the active keys (never their secrets)")
    p_list.add_argument("--all", action="store_true", help="revoked and expired keys too")
    p_create = keys.add_parser("create", help="a new key; its secret is printed once")
    p_create.add_argument("--name", required=True)
    p_create.add_argument("--scope", action="append", required=True, choices=SCOPES, dest="scopes")
    p_create.add_argument("--expires-in", type=duration, default=None)
    for name, what in (("revoke", "revoke a key now (or after --grace)"),
                       ("rotate", "a new key with the same name and scopes; the old one revoked")):
        p_one = keys.add_parser(name, help=what)
        p_one.add_argument("key_id")
        p_one.add_argument("--grace", type=duration, default=0, help="keep the old key working this long")


def _shown(key: ApiKey) -> dict[str, object]:
    return {k: v for k, v in dataclasses.asdict(key).items() if v not in (None, "")}


def run(args: argparse.Namespace) -> int:
    from service.compose import build_keys  # here: `python -m enroll import --url` need not load models

    keys = build_keys(load_settings(), first_start=False)
    try:
        if args.keys_command == "list":
            for key in keys.list(include_inactive=args.all):
                print(json.dumps(_shown(key)))
        elif args.keys_command == "create":
            key, secret = keys.create(args.name, args.scopes, expires_in_s=args.expires_in)
            print(json.dumps({"key": _shown(key), "secret": secret}))
        elif args.keys_command == "revoke":
            print(json.dumps({"key": _shown(keys.revoke(args.key_id, grace_s=args.grace, keep_an_admin=False))}))
        else:
            old, new, secret = keys.rotate(args.key_id, grace_s=args.grace)
            print(json.dumps({"key": _shown(new), "secret": secret, "replaced": _shown(old)}))
    finally:
        keys.close()
    return 0
