"""Every command README.md and docs/*.md show runs here, or is mapped to the test that runs it.

Shown commands are the lines of fenced ``sh``, ``bash``, ``shell`` and ``console``
blocks (continuations joined, here-documents kept with their command, comments
dropped — but a command a comment names, ``# or: …`` or ``# = uv run …``, is shown
too) and the inline code spans that start with ``uv run ``, ``make ``, ``syncflow ``
or ``dagster ``. Each must match one rule of :data:`RULES`:

* **run** — executed in a sandbox: a temporary DATA_DIR (the embedded SQLite state)
  and DAGSTER_HOME, both emulators on loopback, the settings' defaults otherwise.
  ``uv run X`` runs X from this environment (``uv run`` is the project's environment,
  and a test must not sync it). A few runs are scaled down (``--rows 1000000`` →
  ``--rows 2000``) or fill in a placeholder (``FILE``, ``…``); the rule says so.
* **help** — a command named in prose (``syncflow schedules``, ``dagster job
  launch``): its ``--help`` must succeed, so the name exists.
* **mapped** — too long or too big to run here (``make bench``, ``make ui``, the
  curl examples of docs/API.md): the test that runs it must exist, and for a make
  target the Makefile's recipe must be what that test runs.

A command that matches no rule fails the test with the doc and the command named:
an example can never rot unseen.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.paths import PROJECT_DIR
from syncflow_dagster.settings import (
    DEMO_APISMITH_TOKEN,
    DEMO_SCHEDULEHUB_TOKEN,
    Settings,
    SettingsError,
    load_settings,
)
from syncflow_dagster.testing.apismith import running_apismith
from syncflow_dagster.testing.schedulehub import running_schedulehub
from syncflow_dagster_tests.walkthrough.sandbox import FOREIGN

DOCS = [PROJECT_DIR / "README.md", *sorted((PROJECT_DIR / "docs").glob("*.md"))]
SHELLS = {"sh", "bash", "shell", "console"}
INLINE = re.compile(r"`((?:uv run |make |syncflow |dagster )[^`\n]*)`")
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
HEREDOC = re.compile(r"<<-?\s*'?\"?(\w+)'?\"?")
WALKTHROUGH = "syncflow_dagster_tests/walkthrough/test_walkthrough.py"
EMULATORS_TEST = "syncflow_dagster_tests/emulators/test_command.py"
API_DOCS_TEST = "syncflow_dagster_tests/api/test_docs.py::test_every_sh_block_of_the_api_doc_runs"
CLEAN_TEST = "syncflow_dagster_tests/test_doc_commands.py::test_make_clean_resets_the_local_world"
DAEMON_TEST = "syncflow_dagster_tests/orchestration/test_daemon.py"


@dataclass(frozen=True)
class Shown:
    """A command as a doc shows it."""

    doc: str
    text: str
    kind: str  # the fence's language, or "inline"

    def __str__(self) -> str:
        return f"{self.doc}: {self.text}"


def _drop_comment(line: str) -> tuple[str, str]:
    """The line without its comment (a ``#`` outside quotes after a blank), and the comment."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def _named_in_comment(comment: str) -> str | None:
    """A command a comment offers: ``or: CMD`` or ``= uv run …``."""
    for lead in ("or:", "="):
        if comment.startswith(lead):
            rest = comment[len(lead) :].strip()
            if re.match(r"([A-Z_]+=\S+ )*(uv run|make|syncflow|dagster) ", rest):
                return rest
    return None


def _block_commands(body: str, lang: str) -> list[str]:
    lines = body.splitlines()
    if lang == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    commands: list[str] = []
    i = 0
    while i < len(lines):
        text, comment = _drop_comment(lines[i])
        i += 1
        while text.endswith("\\") and i < len(lines):
            more, comment = _drop_comment(lines[i])
            text = text[:-1].rstrip() + " " + more.strip()
            i += 1
        heredoc = HEREDOC.search(text)
        if heredoc:
            end = heredoc.group(1)
            while i < len(lines) and lines[i].strip() != end:
                text += "\n" + lines[i]
                i += 1
            text += "\n" + end
            i += 1
        if text.strip():
            commands.append(text.strip())
        named = _named_in_comment(comment)
        if named:
            commands.append(named)
    return commands


def shown_commands() -> list[Shown]:
    """Every command the README and the docs show, in the order they show them."""
    shown: list[Shown] = []
    for path in DOCS:
        doc = path.relative_to(PROJECT_DIR).as_posix()
        text = path.read_text()
        for match in FENCE.finditer(text):
            lang = match.group(1)
            if lang in SHELLS:
                shown += [Shown(doc, c, lang) for c in _block_commands(match.group(2), lang)]
        prose = FENCE.sub("", text)
        shown += [Shown(doc, m.group(1).strip(), "inline") for m in INLINE.finditer(prose)]
    return shown


# ------------------------------------------------------------------ the rules


@dataclass
class Sandbox:
    """Where the runnable commands run."""

    tmp: Path
    env: dict[str, str]


@dataclass(frozen=True)
class Run:
    """Run the command (``rewrite`` turns the shown text into what runs)."""

    rewrite: Callable[[str, Sandbox], str] = lambda text, sandbox: text
    expect: str = ""
    """Text the output must hold."""
    code: int = 0
    env: Callable[[Sandbox], dict[str, str]] = lambda sandbox: {}


@dataclass(frozen=True)
class Help:
    """A command named in prose: ``<text> --help`` must succeed."""


@dataclass(frozen=True)
class Mapped:
    """Run by another test: ``test`` (a path, optionally ``::function``) must exist."""

    test: str
    recipe: str | None = None
    """For a make target: what its recipe must run."""
    why: str = ""


@dataclass(frozen=True)
class Rule:
    pattern: str
    action: Run | Help | Mapped
    docs: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()

    def matches(self, shown: Shown) -> bool:
        return (
            bool(re.fullmatch(self.pattern, shown.text, flags=re.DOTALL))
            and (not self.docs or shown.doc in self.docs)
            and (not self.kinds or shown.kind in self.kinds)
        )


def _scaled(old: str, new: str) -> Callable[[str, Sandbox], str]:
    return lambda text, sandbox: text.replace(old, new)


def _two_open_letters(sandbox: Sandbox) -> str:
    """``syncflow failed resolve ID ID`` with two ids that are open in the sandbox now."""
    listed = _bash("syncflow failed list --json --limit 2", sandbox)
    ids = [str(letter["id"]) for letter in json.loads(listed.stdout)]
    assert len(ids) == 2, listed.stdout + listed.stderr
    return "syncflow failed resolve " + " ".join(ids)


def _pg_home(sandbox: Sandbox) -> dict[str, str]:
    return {"DAGSTER_HOME": str(sandbox.tmp / "postgres_home")}


API_DOC = ("docs/API.md",)
RULES: list[Rule] = [
    # The two commands of the README's first block.
    Rule(r"make test", Mapped(".ci/run", recipe="pytest", why="CI runs `make test`")),
    Rule(r"make demo", Mapped(WALKTHROUGH, recipe="syncflow demo")),
    # The local world.
    Rule(r"make ui( PORT=\d+)?", Mapped(WALKTHROUGH, recipe="syncflow emulators --ui --ui-port")),
    Rule(r"make emulators", Mapped(EMULATORS_TEST, recipe="syncflow emulators")),
    Rule(r"(uv run )?syncflow emulators", Mapped(EMULATORS_TEST)),
    Rule(r"(uv run )?syncflow emulators --ui.*", Mapped(WALKTHROUGH)),
    Rule(r"(uv run )?syncflow emulators stop", Mapped(EMULATORS_TEST)),
    Rule(r"make clean", Mapped(CLEAN_TEST, recipe="rm -rf data")),
    Rule(
        r"uv run syncflow emulators (update|insert|delete|insert-rows|update-keys|delete-keys) .*",
        Run(),
    ),
    Rule(r"uv run syncflow emulators --help", Run(expect="insert-rows")),
    # The long ones.
    Rule(
        r"(uv run )?syncflow bench --background.*",
        Mapped("syncflow_dagster_tests/bench/test_background.py"),
    ),
    Rule(
        r"make bench.*|(uv run )?syncflow bench.*",
        Mapped("syncflow_dagster_tests/bench/test_pipeline.py"),
    ),
    Rule(
        r"make reliability",
        Mapped(
            "syncflow_dagster_tests/reliability/test_kill_trials.py",
            recipe="syncflow_dagster_tests/reliability",
        ),
    ),
    Rule(
        r"(uv run )?syncflow api",
        Mapped("syncflow_dagster_tests/api/test_command.py", why="and make ui in the walkthrough"),
    ),
    Rule(
        r"uv run dagster-webserver -w workspace\.yaml .*"
        r"|uv run dagster-daemon run -w workspace\.yaml",
        Mapped(WALKTHROUGH, why="make ui runs them (testing/local_world.py)"),
    ),
    Rule(
        r"(uv run )?dagster job launch -w workspace\.yaml.*",
        Mapped(DAEMON_TEST, why="dagster job launch through a daemon's queue"),
    ),
    # docs/API.md: its sh blocks run against a served API in the API's own test.
    Rule(r".*", Mapped(API_DOCS_TEST), docs=API_DOC, kinds=("sh",)),
    Rule(
        r"export (API|READ_TOKEN|TOKEN)=.*",
        Mapped(API_DOCS_TEST, why="the test sets them"),
        docs=API_DOC,
    ),
    # Settings shown as lines of a shell block: SyncFlow must accept them.
    Rule(r"[A-Z_]+=\S+", Run()),
    Rule(
        r"export DAGSTER_HOME=.*",
        Run(rewrite=lambda t, s: f"export DAGSTER_HOME={s.tmp / 'postgres_home'}"),
    ),
    Rule(
        r'mkdir -p "\$DAGSTER_HOME" && cp dagster\.postgres\.yaml "\$DAGSTER_HOME/dagster\.yaml"',
        Run(env=_pg_home),
    ),
    # The cheap ones: run as shown.
    Rule(r"uv run syncflow --help", Run(expect="emulators")),
    Rule(r"(uv run )?syncflow db upgrade", Run()),
    Rule(
        r"DATABASE_URL=… uv run alembic upgrade head",
        Run(rewrite=lambda t, s: t.replace("…", f"sqlite:///{s.tmp / 'alembic.db'}")),
    ),
    Rule(
        r"uv run dagster definitions validate -m syncflow_dagster\.definitions",
        Run(expect="Validation successful"),
    ),
    Rule(
        r"uv run dagster job execute -m syncflow_dagster\.definitions -j sync_items_job"
        r"( --tags .*)?",
        Run(expect="RUN_SUCCESS"),
    ),
    Rule(r"uv run syncflow (failed|pending|schedules) .*", Run()),
    Rule(
        r"syncflow failed resolve 12 13 --reason …",
        Run(rewrite=lambda t, s: _two_open_letters(s) + " --reason 'shown in docs/OPERATIONS.md'"),
    ),
    Rule(r"(syncflow (failed|pending) list)", Run()),
    Rule(r"syncflow (schedules|failed retry)|dagster (job execute|job launch|dev)", Help()),
    # Benchmarks and timings: the same command lines, scaled down.
    Rule(
        r"uv run python -m syncflow_dagster\.bench\.apismith_throughput --rows 1000000",
        Run(rewrite=_scaled("1000000", "2000"), expect="rows/s"),
    ),
    Rule(
        r"uv run python -m syncflow_dagster\.bench\.schedulehub_throughput --records 1000000 .*",
        Run(
            rewrite=lambda t, s: (
                t.replace("1000000", "2000")
                .replace("FILE", str(s.tmp / "hub-bench.db"))
                .replace("[", "")
                .replace("]", "")
            )
        ),
    ),
    Rule(
        r"uv run python -m syncflow_dagster\.bench\.state_store --repeat 5 --baselines",
        Run(rewrite=lambda t, s: t.replace("--repeat 5", "--repeat 1 --rows 2000 --small 200")),
    ),
    Rule(
        r"uv run python -m syncflow_dagster_tests\.stages\.normalize\.timing_normalize",
        Run(rewrite=lambda t, s: t + " 20000 --runs 1"),
    ),
    Rule(
        r"uv run python -m syncflow_dagster_tests\.reliability\.results FILE",
        Run(rewrite=lambda t, s: t.replace("FILE", str(s.tmp / "results.jsonl"))),
    ),
]


def rule_for(shown: Shown) -> Rule | None:
    """The first rule that takes the command."""
    return next((r for r in RULES if r.matches(shown)), None)


# ------------------------------------------------------------------ the tests


def test_every_shown_command_is_run_or_mapped() -> None:
    shown = shown_commands()
    assert len(shown) > 60, "the extraction finds the docs' commands"
    unknown = [str(s) for s in shown if rule_for(s) is None]
    assert not unknown, "commands shown in the docs that no test runs:\n" + "\n".join(unknown)


def test_the_extraction_reads_blocks_as_a_shell_would() -> None:
    body = (
        "make ui     # terminal 1 # not a command\n"
        'curl -fsS -X POST \\\n  -d \'{"a": "#1"}\' "$API/x"\n'
        "cat > f.yaml <<'YAML'\nname: x\n# a yaml comment\nYAML\n"
        "make bench   # = uv run syncflow bench --rows 1000000\n"
        "uv run syncflow db upgrade   # or: DATABASE_URL=… uv run alembic upgrade head\n"
    )
    assert _block_commands(body, "sh") == [
        "make ui",
        'curl -fsS -X POST -d \'{"a": "#1"}\' "$API/x"',
        "cat > f.yaml <<'YAML'\nname: x\n# a yaml comment\nYAML",
        "make bench",
        "uv run syncflow bench --rows 1000000",
        "uv run syncflow db upgrade",
        "DATABASE_URL=… uv run alembic upgrade head",
    ]
    assert _block_commands("$ make demo\nreconciled\n", "console") == ["make demo"]


def _recipe(target: str) -> str:
    makefile = (PROJECT_DIR / "Makefile").read_text()
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n?)+)", makefile, flags=re.MULTILINE)
    assert match, f"the Makefile has no target {target}"
    return match.group(1)


def test_mapped_commands_name_tests_that_exist_and_recipes_that_run_them() -> None:
    problems = []
    for shown in shown_commands():
        rule = rule_for(shown)
        if rule is None or not isinstance(rule.action, Mapped):
            continue
        path, _, function = rule.action.test.partition("::")
        target = PROJECT_DIR / path
        if not target.exists():
            problems.append(f"{shown}: {path} does not exist")
        elif function and not re.search(rf"^def {function}\(", target.read_text(), re.MULTILINE):
            problems.append(f"{shown}: {path} has no {function}")
        if rule.action.recipe and shown.text.startswith("make "):
            recipe = _recipe(shown.text.split()[1])
            if rule.action.recipe not in recipe:
                problems.append(f"{shown}: the recipe does not run {rule.action.recipe!r}")
    assert "make test" in (PROJECT_DIR / ".ci" / "run").read_text()
    assert not problems, "\n".join(problems)


def test_make_clean_resets_the_local_world() -> None:
    """`make clean` removes data/, the default DATA_DIR: the ERP, hub, state, instance, logs."""
    assert "rm -rf data " in _recipe("clean")
    assert str(Settings.model_fields["data_dir"].default) == "data"


def test_settings_shown_in_the_docs_are_accepted() -> None:
    """``NAME=value`` lines of shell and dotenv blocks: every SyncFlow setting is valid."""
    fields = set(Settings.model_fields)
    problems, seen = [], 0
    for path in DOCS:
        for match in FENCE.finditer(path.read_text()):
            if match.group(1) not in {*SHELLS, "dotenv"}:
                continue
            for line in match.group(2).splitlines():
                text, _ = _drop_comment(line)
                assignment = re.fullmatch(r"(?:export )?([A-Z_]+)=(\S+)", text.strip())
                if not assignment or assignment.group(1).lower() not in fields:
                    continue
                seen += 1
                name, value = assignment.groups()
                try:
                    load_settings(**{name.lower(): value})
                except SettingsError as exc:
                    problems.append(f"{path.name}: {name}: {exc}")
    assert seen >= 8 and not problems, problems


# ------------------------------------------------------------------ running them


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Both emulators on loopback (an ERP with dead letters to show), a fresh DATA_DIR."""
    tmp = tmp_path_factory.mktemp("doc_commands")
    home = tmp / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_DIR / "dagster.yaml", home / "dagster.yaml")
    (tmp / "results.jsonl").write_text("")
    spec = DatasetSpec(seed=3, work_orders=200, bad_fraction=0.08)
    with (
        running_apismith(spec, token=DEMO_APISMITH_TOKEN) as erp,
        running_schedulehub(token=DEMO_SCHEDULEHUB_TOKEN) as hub,
    ):
        env = {k: v for k, v in os.environ.items() if k.upper() not in FOREIGN}
        env.update(
            DATA_DIR=str(tmp / "data"),
            DAGSTER_HOME=str(home),
            APISMITH_URL=erp.url,
            SCHEDULEHUB_URL=hub.url,
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        )
        box = Sandbox(tmp, env)
        # Something to show: the dead letters and waiting children of one sync of everything.
        done = _bash("dagster job execute -m syncflow_dagster.definitions -j sync_all_job", box)
        assert done.returncode == 0, done.stderr[-3000:]
        yield box


def _bash(
    command: str, sandbox: Sandbox, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + command],
        cwd=PROJECT_DIR,
        env={**sandbox.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _as_run(text: str) -> str:
    """``uv run X`` runs X of this environment (first on the sandbox's PATH)."""
    return re.sub(r"(^|[\s;&|(])uv run ", r"\1", text)


@pytest.mark.slow
def test_the_runnable_commands_run_as_shown(sandbox: Sandbox) -> None:
    ran: set[str] = set()
    problems = []
    count = 0
    for shown in shown_commands():
        rule = rule_for(shown)
        if rule is None or isinstance(rule.action, Mapped):
            continue
        if isinstance(rule.action, Help):
            command, expect, code, env = f"{shown.text} --help", "", 0, {}
        else:
            command = rule.action.rewrite(shown.text, sandbox)
            expect, code, env = rule.action.expect, rule.action.code, rule.action.env(sandbox)
        command = _as_run(command)
        if command in ran:
            continue
        ran.add(command)
        count += 1
        done = _bash(command, sandbox, env)
        output = done.stdout + done.stderr
        if done.returncode != code or expect not in output:
            problems.append(
                f"{shown}\n  ran: {command}\n  exit {done.returncode}: {output[-1500:]}"
            )
    assert count > 30
    assert not problems, "commands shown in the docs that do not work as shown:\n" + "\n".join(
        problems
    )


def test_shlex_reads_every_shown_command() -> None:
    """A shown command a shell cannot even parse (an unclosed quote) is a broken example."""
    broken = []
    for shown in shown_commands():
        try:
            shlex.split(shown.text.split("\n", 1)[0], comments=False)
        except ValueError as exc:
            broken.append(f"{shown}: {exc}")
    assert not broken, broken
