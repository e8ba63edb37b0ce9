"""The product never imports the sandbox (testing/, emulators/, bench/).

The product is everything under ``syncflow_dagster/`` but those three
packages. Three commands launch sandbox tools — ``syncflow demo``,
``syncflow emulators``, ``syncflow bench`` — and may import them, but only
inside their functions (and for type checking), so that importing the command
line, the definitions or the API never loads them.
"""

import ast
import subprocess
import sys
from pathlib import Path

from syncflow_dagster.paths import PROJECT_DIR

PACKAGE = PROJECT_DIR / "syncflow_dagster"
SANDBOX = ("testing", "emulators", "bench")
LAUNCHERS = {"commands/demo.py", "commands/emulators.py", "commands/bench.py"}
"""Product modules that may import the sandbox inside functions."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_DIR).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _product_modules() -> list[Path]:
    return sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if p.relative_to(PACKAGE).parts[0] not in SANDBOX and "__pycache__" not in p.parts
    )


def _is_sandbox(module: str) -> bool:
    return any(
        module == f"syncflow_dagster.{s}" or module.startswith(f"syncflow_dagster.{s}.")
        for s in SANDBOX
    )


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The absolute names an import statement loads."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([base] if base else [])])
    # `from syncflow_dagster import testing` loads the subpackage too.
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import with where it runs: ``module`` (at import time), ``function``, ``typing``."""
    found: list[tuple[ast.Import | ast.ImportFrom, str]] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.append((child, where))
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, "function" if where == "module" else where)
            elif isinstance(child, ast.If) and _is_type_checking(child):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), "typing")
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), where)
            else:
                visit(child, where)

    visit(tree, "module")
    return found


def sandbox_imports() -> list[str]:
    """Every product import of the sandbox that breaks the rule, as ``file:line: name``."""
    wrong = []
    for path in _product_modules():
        rel = path.relative_to(PACKAGE).as_posix()
        module = _module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, where in _imports(tree):
            names = [
                n for n in _imported(node, module, path.name == "__init__.py") if _is_sandbox(n)
            ]
            allowed = rel in LAUNCHERS and where in ("function", "typing")
            if names and not allowed:
                wrong.append(f"syncflow_dagster/{rel}:{node.lineno}: {names[0]} ({where})")
    return wrong


def test_the_product_never_imports_the_sandbox() -> None:
    assert len(_product_modules()) > 50
    wrong = sandbox_imports()
    assert not wrong, "the product imports the sandbox:\n" + "\n".join(wrong)


def test_the_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    source = """
import syncflow_dagster.testing.postgres
from syncflow_dagster import emulators
from ..bench import pipeline
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from syncflow_dagster.testing import reconcile
class A:
    from syncflow_dagster.bench.cpu import RUN
def f():
    from syncflow_dagster.emulators.apismith import ErpDataset
"""
    found = [
        (name, where)
        for node, where in _imports(ast.parse(source))
        for name in _imported(node, "syncflow_dagster.commands.x", False)
        if _is_sandbox(name)
    ]
    assert found == [
        ("syncflow_dagster.testing.postgres", "module"),
        ("syncflow_dagster.emulators", "module"),
        ("syncflow_dagster.bench", "module"),
        ("syncflow_dagster.bench.pipeline", "module"),
        ("syncflow_dagster.testing", "typing"),
        ("syncflow_dagster.testing.reconcile", "typing"),
        ("syncflow_dagster.bench.cpu", "module"),
        ("syncflow_dagster.bench.cpu.RUN", "module"),
        ("syncflow_dagster.emulators.apismith", "function"),
        ("syncflow_dagster.emulators.apismith.ErpDataset", "function"),
    ]


def test_loading_the_product_loads_no_sandbox_module() -> None:
    """The definitions, the API and every command's module, in a fresh interpreter."""
    script = """
import importlib, sys
from syncflow_dagster import cli
import syncflow_dagster.definitions, syncflow_dagster.api
cli.build_parser()
bad = sorted(m for m in sys.modules if m.split(".")[:2] in (
    ["syncflow_dagster", "testing"], ["syncflow_dagster", "emulators"],
    ["syncflow_dagster", "bench"]))
print("\\n".join(bad))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=PROJECT_DIR
    )
    assert done.stdout.strip() == "", f"loaded by the product: {done.stdout}"
