"""The house rules of DESIGN.md that a file scan can check."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


def test_models_import_nothing_from_backend_but_groups():
    bad = {p.name: m for p in sorted((ROOT / "models").glob("*.py")) for m in _imports(p)
           if m.split(".")[0] == "backend" and not (m == "backend.groups" or m.startswith("backend.groups."))}
    assert not bad, bad


def test_backend_never_imports_streamlit():
    bad = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "backend").rglob("*.py"))
           if any(m.split(".")[0] == "streamlit" for m in _imports(p))]
    assert not bad, bad


def test_pages_do_no_array_maths():
    """``app_pages/`` (pages, their helpers and the map component's Python side) never import
    numpy: array work lives in ``backend/`` (e.g. ``backend.map_payload`` packs the map points)."""
    bad = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "app_pages").rglob("*.py"))
           if any(m.split(".")[0] in ("numpy", "scipy", "torch") for m in _imports(p))]
    assert not bad, bad
