"""Write a PEP 503 "simple" package index over a folder of downloaded distributions, so an image build can use
a package index on this machine (``--build-arg PIP_INDEX_URL=http://127.0.0.1:PORT/simple``) exactly as it would a
private index: where the build's own network cannot reach PyPI (a TLS-intercepting proxy, an air gap).

    python3 deploy/local_index.py var/wheelhouse      # expects var/wheelhouse/files/*.whl|*.tar.gz
"""
from __future__ import annotations

import hashlib
import html
import re
import sys
from collections import defaultdict
from pathlib import Path


def project_of(filename: str) -> str:
    """The normalised project name of a wheel or sdist file name (PEP 503)."""
    stem = filename.split("-")[0] if filename.endswith(".whl") else filename.rsplit("-", 1)[0]
    return re.sub(r"[-_.]+", "-", stem).lower()


def main(root: Path) -> int:
    projects: dict[str, list[Path]] = defaultdict(list)
    for path in sorted((root / "files").iterdir()):
        if path.name.endswith((".whl", ".tar.gz", ".zip")):
            projects[project_of(path.name)].append(path)
    for name, files in projects.items():
        links = []
        for path in files:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            links.append(f'<a href="../../files/{html.escape(path.name)}#sha256={digest}">{html.escape(path.name)}</a>')
        page = root / "simple" / name / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text("<!DOCTYPE html><html><body>\n" + "<br>\n".join(links) + "\n</body></html>\n")
    index = "".join(f'<a href="{n}/">{n}</a><br>\n' for n in sorted(projects))
    (root / "simple" / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{index}</body></html>\n")
    print(f"{len(projects)} projects indexed under {root / 'simple'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
