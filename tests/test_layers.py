"""The layers hold: the core imports no framework, database driver or model runtime; the CLI does not reach
into the web layer; the error tables of the docs are generated from the error hierarchy."""
import subprocess
import sys
from pathlib import Path

from service.errors import client_errors, markdown_table

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_CORE = ("flask", "werkzeug", "chromadb", "sqlalchemy", "torch", "cv2", "onnxruntime", "openvino", "dlib",
                     "facenet_pytorch")


def imported_by(*modules: str) -> set[str]:
    code = (f"import sys\nfor m in {list(modules)!r}: __import__(m)\n"
            "print('\\n'.join(sorted({n.split('.')[0] for n in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_core_imports_no_framework_store_or_model_runtime():
    core = sorted(f"service.core.{p.stem}" for p in (ROOT / "service" / "core").glob("*.py"))
    loaded = imported_by(*core)
    assert "numpy" in loaded  # the check sees real imports
    assert not loaded & set(FORBIDDEN_IN_CORE), loaded & set(FORBIDDEN_IN_CORE)


def test_enroll_cli_never_imports_the_web_layer():
    code = "import sys, enroll.__main__; print(any(n.startswith('service.web') for n in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr
    source = (ROOT / "enroll" / "__main__.py").read_text()
    assert "chromadb" not in source and ".client" not in source


def test_readme_error_table_is_the_generated_one():
    assert markdown_table() in (ROOT / "README.md").read_text()


def test_docs_page_lists_every_client_error(client):
    page = client.get("/docs").get_data(as_text=True)
    for cls in client_errors():
        assert f"<code>{cls.code}</code>" in page
    codes = [c.code for c in client_errors()]
    assert len(codes) == len(set(codes)) and "store_unavailable" in codes and "internal_error" not in codes
