"""The README and the docs describe the tree that exists."""

import re
from pathlib import Path

from syncflow_dagster.paths import PROJECT_DIR

README = (PROJECT_DIR / "README.md").read_text()


def _layout_paths() -> list[Path]:
    block = README.split("## Layout", 1)[1].split("```", 2)[1]
    parents: list[tuple[int, Path]] = []
    paths = []
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        names = re.split(r"\s{2,}", line.strip())[0]
        while parents and parents[-1][0] >= indent:
            parents.pop()
        base = parents[-1][1] if parents else PROJECT_DIR
        for name in names.split(", "):
            path = base / name.strip()
            paths.append(path)
            if name.endswith("/"):
                parents.append((indent, path))
    return paths


def test_readme_layout_names_only_what_exists() -> None:
    paths = _layout_paths()
    assert len(paths) > 20
    missing = [str(p.relative_to(PROJECT_DIR)) for p in paths if not p.exists()]
    assert not missing, f"README layout names paths that do not exist: {missing}"


def test_every_top_level_package_folder_is_in_the_layout() -> None:
    listed = {p.relative_to(PROJECT_DIR).as_posix().rstrip("/") for p in _layout_paths()}
    package = PROJECT_DIR / "syncflow_dagster"
    folders = {
        f"syncflow_dagster/{d.name}"
        for d in package.iterdir()
        if d.is_dir() and d.name != "__pycache__"
    }
    assert folders <= listed, f"not in the README layout: {sorted(folders - listed)}"


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one() -> None:
    first_block = README.split("```", 2)[1]
    assert "make demo" in first_block and "make test" in first_block
    ci = (PROJECT_DIR / ".ci" / "run").read_text()
    assert "make test" in ci


def test_docs_named_in_the_readme_exist() -> None:
    for doc in set(re.findall(r"docs/[A-Z_]+\.md", README)):
        assert (PROJECT_DIR / doc).exists(), doc
