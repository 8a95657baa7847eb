"""`ruff check` and `mypy --strict src/` stay clean: the style rules are part of the contract."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=False)


def test_ruff_clean() -> None:
    result = _run(sys.executable, "-m", "ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_clean() -> None:
    result = _run(sys.executable, "-m", "mypy", "--strict", "src/")
    assert result.returncode == 0, result.stdout + result.stderr


def _package_imports() -> dict[str, set[str]]:
    """hailoc's packages (first level below hailoc) and the packages each one imports."""
    import ast

    src = REPO / "src" / "hailoc"
    graph: dict[str, set[str]] = {}
    for path in src.rglob("*.py"):
        if "worker" in path.parts:
            continue  # runs inside the suite container; imports nothing of hailoc
        rel = path.relative_to(src).parts
        owner = rel[0].removesuffix(".py")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "hailoc" and len(parts) > 1 and parts[1] != owner:
                    graph.setdefault(owner, set()).add(parts[1])
    return graph


def test_no_import_cycles_between_packages() -> None:
    graph = _package_imports()
    seen: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        if seen.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join([*path, node]))
        if seen.get(node) == 2:
            return
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*path, node])
        seen[node] = 2

    for package in sorted(graph):
        visit(package, [])


def test_backends_and_records_never_import_the_pipeline_or_cli() -> None:
    graph = _package_imports()
    for low in ("backends", "records", "eval", "inference", "plan", "manifest", "calibration"):
        assert not graph.get(low, set()) & {"pipeline", "cli", "autoplan"}, low


LONG_FUNCTION = 80  # lines, signature and docstring included
CLI_MODULE = 150


def test_no_function_over_80_lines_unless_a_comment_says_why() -> None:
    """A function that outgrows a screen is split; one that may not be says why in a
    `# long: ...` comment inside it."""
    import ast

    too_long = []
    for path in sorted((REPO / "src" / "hailoc").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            body = lines[node.lineno - 1 : node.end_lineno]
            if length > LONG_FUNCTION and not any(ln.strip().startswith("# long:") for ln in body):
                too_long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({length})")
    assert not too_long, too_long


def test_cli_modules_stay_thin() -> None:
    """cli/ parses options, calls one library function per command and prints."""
    thick = {
        str(p.relative_to(REPO)): n
        for p in sorted((REPO / "src" / "hailoc" / "cli").glob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > CLI_MODULE
    }
    assert not thick, thick
