"""The shape of the package: one task registry, no import cycles, short modules."""

from __future__ import annotations

import ast
from pathlib import Path

import seqnlp
from seqnlp.tasks import TASKS

PKG = Path(seqnlp.__file__).parent
MAX_LINES = 500


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Every ``import``/``from ... import`` in seqnlp/ -- at module level *and* inside functions -- as edges
    between seqnlp modules (``from . import x`` names the submodule x when there is one)."""
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        package = name if is_pkg else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                # `from pkg import submodule` depends on the submodule; any other name, on the module itself
                subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in modules]
                targets = subs + ([mod] if len(subs) < len(node.names) else [])
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name and t.startswith("seqnlp"):
                    graph[name].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_no_import_cycles_not_even_deferred_ones():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_is_over_500_lines():
    long = {str(p.relative_to(PKG.parent)): n for p in PKG.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_cli_task_list_is_the_registry(capsys):
    from seqnlp.cli import main

    assert main(["tasks"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert listed == list(TASKS)


def test_every_registered_task_provides_the_contract():
    required = ("Config", "ModelConfig", "build_model", "load_data", "load_predictor", "evaluate", "format_text")
    for name, task in TASKS.items():
        api = task.api
        missing = [k for k in required if not hasattr(api, k)]
        assert not missing, f"{task.module} lacks {missing}"
        cfg = api.Config()
        assert cfg.task == name
        assert isinstance(cfg.model, api.ModelConfig)
        assert hasattr(cfg, "infer_precision") and not hasattr(cfg, "record")
        for mode in task.modes:
            assert mode in api.EXTRA_MODES, f"{name}: registry lists mode {mode!r}, its module lacks it"
        assert callable(task.recipe_main())


def test_task_modules_do_not_import_recipes():
    graph = import_graph()
    for task in TASKS.values():
        bad = [m for m in graph[task.module] if m.startswith("seqnlp.recipes")]
        assert not bad, f"{task.module} imports {bad}"
