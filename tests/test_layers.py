"""The layers hold, read from the source's imports (parsed): the core imports no framework, database driver,
model runtime or outer layer (it owns the ports); the store and vision never import the web layer or each
other; the web layer reaches the store only through the core; the CLI never imports the web layer. And the
error tables of the docs are generated from the error hierarchy."""
import ast
from collections.abc import Callable
from pathlib import Path

from service.errors import client_errors, markdown_table

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_CORE = ("flask", "werkzeug", "chromadb", "sqlalchemy", "torch", "cv2", "onnxruntime", "openvino", "dlib",
                     "facenet_pytorch")


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved to absolute names (parsed, not executed: an
    import inside a function or under ``TYPE_CHECKING`` counts too)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    package = parts if path.name == "__init__.py" else parts[:-1]
    package = package[:-1] if package and package[-1] == "__init__" else package
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found |= {module} | ({f"{module}.{a.name}" for a in node.names} if not node.module else set())
    return found


def imports_of_layer(layer: str) -> dict[str, set[str]]:
    return {str(p.relative_to(ROOT)): imports_of(p) for p in sorted((ROOT / layer).rglob("*.py"))}


def offenders(layer: str, allowed: Callable[[str], bool]) -> dict[str, list[str]]:
    found = {path: sorted(m for m in modules if not allowed(m)) for path, modules in imports_of_layer(layer).items()}
    return {path: modules for path, modules in found.items() if modules}


def _top(module: str) -> str:
    return module.split(".")[0]


def _within(*prefixes: str) -> Callable[[str], bool]:
    return lambda m: any(m == p or m.startswith(p + ".") for p in prefixes)


def test_the_import_parser_sees_relative_and_absolute_imports():
    found = imports_of(ROOT / "service" / "core" / "recognizer.py")
    assert {"numpy", "service.errors", "service.core.ports", "service.core.calibration"} <= found
    assert imports_of(ROOT / "service" / "web" / "__init__.py") >= {"service.compose", "service.web.health"}


def test_core_imports_no_framework_store_or_model_runtime():
    """The core owns its ports: it imports only itself, the errors, and numpy-level libraries."""
    ours = _within("service", "enroll", "bench", "tests")
    allowed_ours = _within("service.core", "service.errors")
    bad = offenders("service/core", lambda m: (allowed_ours(m) if ours(m) else _top(m) not in FORBIDDEN_IN_CORE))
    assert not bad, bad


def test_store_and_vision_never_import_the_web_layer_or_each_other():
    assert not offenders("service/store", lambda m: not _within("service.web", "service.vision", "service.compose",
                                                                "flask")(m)), "store"
    assert not offenders("service/vision", lambda m: not _within("service.web", "service.store", "service.compose",
                                                                 "flask", "sqlalchemy", "chromadb")(m)), "vision"


def test_web_goes_through_the_composition_root_and_the_core():
    """Views reach the store only through the recognizer (or another core use-case): never a store module."""
    bad = offenders("service/web", lambda m: not _within("service.store", "service.vision", "sqlalchemy",
                                                         "chromadb")(m))
    assert not bad, bad


def test_enroll_cli_never_imports_the_web_layer():
    bad = offenders("enroll", lambda m: not _within("service.web", "flask", "chromadb")(m))
    assert not bad, bad


def test_readme_error_table_is_the_generated_one():
    assert markdown_table() in (ROOT / "README.md").read_text()


def test_docs_page_lists_every_client_error(client):
    page = client.get("/docs").get_data(as_text=True)
    for cls in client_errors():
        assert f"<code>{cls.code}</code>" in page
    codes = [c.code for c in client_errors()]
    assert len(codes) == len(set(codes)) and "store_unavailable" in codes and "internal_error" not in codes


def test_readme_model_example_is_the_shipped_code():
    """The README's "Adding a model" example is SFace's real file and registry entry, so it cannot drift."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("**Adding a model**"):]
    block = section[section.index("```python\n") + len("```python\n"):]
    block = block[:block.index("\n```")]
    shown_class, shown_entry = block.split("\n\n# service/vision/embedders/registry.py, in BUILT_IN:\n")
    source = (ROOT / "service" / "vision" / "embedders" / "sface.py").read_text()
    assert shown_class.removeprefix("# service/vision/embedders/sface.py\n") in source
    assert "class SFaceEmbedder(SingleModel):" in shown_class and "def _forward" in shown_class
    assert shown_entry.strip() in (ROOT / "service" / "vision" / "embedders" / "registry.py").read_text()
