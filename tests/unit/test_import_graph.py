"""No import circles between the project's modules (module-level or inside functions;
``if TYPE_CHECKING:`` blocks excepted): each feature depends on the ones below it. The
benchmarks (top-level ``bench``) sit beside the service: it never imports them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("orchestrator", "export", "storage", "bench")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking(child):
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[:len(package.split(".")) - child.level + 1]
                    base = ".".join(anchor + ([child.module] if child.module else []))
                found.add(base)
                found.update(f"{base}.{a.name}" for a in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    resolved = set()
    for target in found:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name and not name.startswith(target + "."):
            resolved.add(target)  # a package's own __init__ is not a dependency edge
    return resolved


def graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
             if "__pycache__" not in p.parts]
    modules = {module_name(p) for p in files}
    return {module_name(p): imports_of(p, modules) for p in files}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def test_no_import_circles() -> None:
    assert cycles(graph()) == []


def folder(module: str) -> str | None:
    """The folder of an orchestrator module: ``orchestrator.chat`` for
    ``orchestrator.chat.service``; a top-level module (``orchestrator.runtime``) is its own."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "orchestrator" and len(parts) > 1 else None


def folder_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    folders: dict[str, set[str]] = {}
    for module, targets in edges.items():
        source = folder(module)
        if source is None:
            continue
        for target in targets:
            into = folder(target)
            if into is not None and into != source:
                folders.setdefault(source, set()).add(into)
    return folders


# Folder-level circles that remain, each with why; a new one fails the test.
ALLOWED_FOLDER_CIRCLES: list[list[str]] = []


def test_no_circles_between_orchestrator_folders() -> None:
    """Modules can form no circle while their folders do (chat.a -> auth.b -> chat.c):
    features depend on one another one way only."""
    assert cycles(folder_graph(graph())) == ALLOWED_FOLDER_CIRCLES


def test_the_folder_check_finds_a_circle() -> None:
    edges = {"orchestrator.chat.a": {"orchestrator.auth.b"},
             "orchestrator.auth.b": {"orchestrator.chat.c"},
             "orchestrator.chat.c": set()}
    assert cycles(edges) == []
    assert cycles(folder_graph(edges)) == [["orchestrator.auth", "orchestrator.chat"]]


def _module_level_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.add(node.module or "")
    return found


def test_the_service_never_imports_bench() -> None:
    """Only the command line reaches the benchmarks, and only inside the bench command's
    functions (so ``voicechat serve`` never loads them)."""
    edges = graph()
    importers = sorted(m for m, targets in edges.items() if m.startswith("orchestrator")
                       and any(t == "bench" or t.startswith("bench.") for t in targets))
    assert importers in ([], ["orchestrator.cli"])
    top = _module_level_imports(ROOT / "orchestrator" / "cli.py")
    assert not {t for t in top if t == "bench" or t.startswith("bench.")}


def test_serving_loads_no_bench_module() -> None:
    """At run time too: the app and the command line of any other command than ``bench``
    (``voicechat serve`` included) import no module of bench/."""
    code = ("import sys; import orchestrator.app; from orchestrator.cli import build_parser; "
            "build_parser(with_bench=False).parse_args(['serve']); "
            "print(sorted(m for m in sys.modules if m == 'bench' or m.startswith('bench.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=300).stdout
    assert out.strip() == "[]"


def test_the_check_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


REALTIME = "orchestrator.realtime"


def folders(edges: dict[str, set[str]], root: str) -> dict[str, set[str]]:
    """The import graph under ``root`` with each subpackage folded into one node (its
    modules' imports together); a module directly under ``root`` stays a node of its own.
    Imports leaving ``root`` are dropped."""

    def node(module: str) -> str | None:
        if module == root or not module.startswith(root + "."):
            return None
        return ".".join(module.split(".")[:len(root.split(".")) + 1])

    folded: dict[str, set[str]] = {}
    for module, targets in edges.items():
        source = node(module)
        if source is None:
            continue
        folded.setdefault(source, set()).update(
            target for target in map(node, targets) if target is not None and target != source)
    return folded


def test_no_import_circles_between_realtime_folders() -> None:
    """The realtime pipeline's packages (protocol, turns, reply, transports) and its
    top-level modules import one way: protocol below turns and reply, the session above
    them, the transports above the session."""
    assert cycles(folders(graph(), REALTIME)) == []


def test_no_import_circles_between_service_packages() -> None:
    """Folded over the whole service (auth, chat, realtime, models, memory, speech, shared,
    telemetry, … and the top-level modules such as runtime.py and dependencies.py), the
    packages import one way too: each feature package provides its own dependencies, and
    none reaches back up through the runtime."""
    assert cycles(folders(graph(), "orchestrator")) == []


def test_the_folder_check_finds_a_circle_between_packages() -> None:
    edges = {"r.a.x": {"r.b.y"}, "r.b.y": {"r.c"}, "r.c": {"r.a.z"}, "r.a.z": set(),
             "r.d": {"r.a.x"}}
    assert cycles(folders(edges, "r")) == [["r.a", "r.b", "r.c"]]
    assert cycles(folders({"r.a.x": {"r.a.z"}, "r.a.z": {"r.a.x"}}, "r")) == []
