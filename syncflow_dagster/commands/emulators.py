"""`syncflow emulators`: the local world's APISmith and ScheduleHub, and ways to change its ERP.

    syncflow emulators [--rows N --seed S ...]      serve both emulators in the foreground
    syncflow emulators --ui [--ui-port 3000]        ... plus the Dagster webserver and daemon
                                                    and the operations API (`make ui`)
    syncflow emulators update ENTITY [N]            change the served ERP (admin API):
    syncflow emulators insert ENTITY [N]              N random rows updated / inserted /
    syncflow emulators delete ENTITY [N]              deleted, or exactly these rows or keys
    syncflow emulators insert-rows ENTITY JSON...
    syncflow emulators update-keys ENTITY KEY... [--set COLUMN=VALUE ...]
    syncflow emulators delete-keys ENTITY KEY...
    syncflow emulators stop                         stop the world's running emulators

The emulators serve the local world under DATA_DIR (see
``syncflow_dagster/testing/local_world.py``): the ERP ``make demo`` left in
``erp.zip`` (generated from ``--rows``/``--seed`` when there is none yet, and saved
after every change), the hub in ``schedulehub.db``, at the ports of APISMITH_URL
and SCHEDULEHUB_URL. Ctrl-C stops everything quietly.
"""

import argparse
import logging
import sys
from typing import Any

import httpx
import orjson

from syncflow_dagster.settings import Settings, SettingsError, load_settings, mask_url

ENTITIES = ("items", "work_centers", "work_orders", "work_order_operations")
DEFAULT_ROWS = 20_000
DEFAULT_SEED = 42


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the command."""
    parser.description = (
        "Serve the local world's APISmith and ScheduleHub emulators in the foreground "
        "(with --ui also the Dagster webserver and daemon and the operations API), or "
        "change the ERP they serve. The world lives in DATA_DIR: the ERP `make demo` left "
        "(erp.zip), the hub (schedulehub.db), the state and the Dagster instance."
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "examples:\n"
        "  syncflow emulators --ui --ui-port 3001\n"
        "  syncflow emulators update work_orders 5\n"
        "  syncflow emulators insert-rows work_orders "
        '\'{"WO_NO": "WO-MINE0001", "ITEM_NO": "ITM-000001"}\'\n'
        "  syncflow emulators update-keys items ITM-000001 --set DESCRIPTION='new text'\n"
        "  syncflow emulators delete-keys work_order_operations WO-000001,10\n"
        "  syncflow emulators stop"
    )
    serve = parser.add_argument_group("serving (no subcommand)")
    serve.add_argument(
        "--rows",
        type=int,
        default=None,
        help=f"work orders of a new ERP (default {DEFAULT_ROWS:,}); only when DATA_DIR has none",
    )
    serve.add_argument(
        "--seed",
        type=int,
        default=None,
        help=f"seed of a new ERP (default {DEFAULT_SEED}); only when DATA_DIR has none",
    )
    serve.add_argument(
        "--operations-per-order", type=float, default=3.0, help="of a new ERP (default 3)"
    )
    serve.add_argument(
        "--bad-fraction",
        type=float,
        default=0.005,
        help="share of bad rows of a new ERP (default 0.005)",
    )
    serve.add_argument(
        "--faults", default="", help="fault spec for both, e.g. 429=0.05,drop=0.01 (default none)"
    )
    serve.add_argument(
        "--apismith-port", type=int, default=None, help="default: the port of APISMITH_URL (8007)"
    )
    serve.add_argument(
        "--schedulehub-port",
        type=int,
        default=None,
        help="default: the port of SCHEDULEHUB_URL (5180)",
    )
    serve.add_argument(
        "--ui",
        action="store_true",
        help="also the Dagster webserver and daemon over workspace.yaml and the operations "
        "API, all over this world (what `make ui` runs)",
    )
    serve.add_argument("--ui-port", type=int, default=3000, help="the Dagster UI's port (--ui)")
    serve.add_argument(
        "--api-port", type=int, default=None, help="the operations API's port (--ui; API_PORT)"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    for action, what in (
        ("update", "give N random rows new values (keys and parents stay)"),
        ("insert", "insert N random new rows (children name existing parents)"),
        ("delete", "delete N random rows (their children become orphans)"),
    ):
        sub = actions.add_parser(action, help=what, description=what)
        sub.add_argument("entity", choices=ENTITIES)
        sub.add_argument("n", type=int, nargs="?", default=1, help="how many rows (default 1)")
        sub.add_argument(
            "--seed", type=int, default=None, help="which rows and values (default: random)"
        )
    sub = actions.add_parser(
        "insert-rows",
        help="insert these rows (JSON objects of true values; columns left out are generated)",
    )
    sub.add_argument("entity", choices=ENTITIES)
    sub.add_argument("rows", nargs="+", metavar="JSON", help='e.g. \'{"ITEM_NO": "ITM-MINE01"}\'')
    sub = actions.add_parser(
        "update-keys", help="update the rows with these keys: --set values, or new random ones"
    )
    sub.add_argument("entity", choices=ENTITIES)
    sub.add_argument("keys", nargs="+", metavar="KEY", help="a key; composite: WO-000001,10")
    sub.add_argument(
        "--set",
        dest="changes",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="a new value (repeatable); none: new random values",
    )
    sub = actions.add_parser("delete-keys", help="delete the rows with these keys")
    sub.add_argument("entity", choices=ENTITIES)
    sub.add_argument("keys", nargs="+", metavar="KEY", help="a key; composite: WO-000001,10")
    actions.add_parser("stop", help="stop the local world's running emulators")


def run(args: argparse.Namespace) -> int:
    """Serve the world, change its ERP, or stop its emulators."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"syncflow emulators: {exc}", file=sys.stderr)
        return 2
    from syncflow_dagster.testing.local_world import LocalWorld, WorldError  # noqa: PLC0415

    world = LocalWorld.from_settings(settings)
    try:
        if args.action is None:
            return _serve(world, args)
        if args.action == "stop":
            return _stop(world)
        return _change(settings, args)
    except WorldError as exc:
        print(f"syncflow emulators: {exc}", file=sys.stderr)
        return 2


# ------------------------------------------------------------------ serving


def _serve(world: Any, args: argparse.Namespace) -> int:
    from syncflow_dagster.testing import local_world as lw  # noqa: PLC0415

    settings = world.settings
    if world.erp.exists() and (args.rows is not None or args.seed is not None):
        raise lw.WorldError(
            f"{world.erp} holds the local world's ERP already; --rows and --seed only "
            "shape a new one (`make clean` starts afresh)"
        )
    if world.has_leftovers():
        print(
            f"note: {world.data_dir} holds a hub or state but no erp.zip (an older world): "
            "the ERP generated now is not the one they were synced from; `make clean` "
            "or `make demo` starts a consistent world",
            file=sys.stderr,
        )
    ports = {"apismith": args.apismith_port, "schedulehub": args.schedulehub_port}
    children = lw.emulator_children(
        world,
        rows=args.rows if args.rows is not None else DEFAULT_ROWS,
        seed=args.seed if args.seed is not None else DEFAULT_SEED,
        operations_per_order=args.operations_per_order,
        bad_fraction=args.bad_fraction,
        faults=args.faults,
        ports={k: v for k, v in ports.items() if v},
        essential=not args.ui,
    )
    wanted = {c.title: _host_port(c.url) for c in children}
    env = dict(world.env())
    env["APISMITH_URL"], env["SCHEDULEHUB_URL"] = children[0].url, children[1].url
    # The tokens reach the processes through the environment, never their command lines.
    env["APISMITH_TOKEN"] = settings.apismith_token.get_secret_value()
    env["SCHEDULEHUB_TOKEN"] = settings.schedulehub_token.get_secret_value()
    token_file = None
    if args.ui:
        api_port = args.api_port or settings.api_port
        dagster = lw.dagster_children(args.ui_port, api_port)
        wanted |= {c.title: _host_port(c.url) for c in dagster if c.url}
        env["DAGSTER_WEBSERVER_URL"] = dagster[0].url
        tokens, token_file = lw.api_token_env(world)
        env |= tokens
        children = [*children, *dagster]
    busy = world.busy(wanted)
    if busy:
        raise lw.WorldError(
            f"{', '.join(busy)} in use: is the local world running already (make ui, make "
            "emulators)? Stop it, or choose other ports (APISMITH_URL, SCHEDULEHUB_URL, "
            "--ui-port / PORT=, API_PORT)"
        )
    if args.ui:
        logging.getLogger("alembic").setLevel(logging.WARNING)  # Dagster's schema stamps
        world.instance().dispose()  # its storage, before the webserver and daemon race to it
    print(f"the local world in {world.data_dir}: starting {len(children)} processes ...")

    def ready() -> None:
        lines = [f"  {c.title:<22} {c.url}" for c in children if c.url]
        lines.append(f"  {'ERP':<22} {world.erp} (changes are saved there)")
        lines.append(f"  {'logs':<22} {world.logs}/")
        if token_file:
            lines.append(f"  {'API token':<22} {token_file} (operator)")
        print("\n".join(["ready:", *lines]))
        print(
            "Change the ERP:  uv run syncflow emulators update work_orders 5  "
            "(uv run syncflow emulators --help)\nCtrl-C stops everything.",
            flush=True,
        )

    return int(lw.supervise(world, children, env, ready))


def _host_port(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").partition(":")
    return host, int(port)


def _stop(world: Any) -> int:
    from syncflow_dagster.testing.local_world import stop_emulators  # noqa: PLC0415

    stopped = stop_emulators(world)
    print("stopped " + ", ".join(stopped) if stopped else "no emulator of the world is running")
    return 0


# ------------------------------------------------------------------ changing the ERP


def _value(text: str) -> Any:
    """A command-line value: JSON when it reads as JSON (numbers, true, null), else text."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _key(text: str) -> list[Any]:
    return [_value(part) for part in text.split(",")]


def _body(args: argparse.Namespace) -> dict[str, Any]:
    if args.action in ("update", "insert", "delete"):
        import secrets  # noqa: PLC0415

        seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
        return {"n": args.n, "seed": seed}
    if args.action == "insert-rows":
        rows = [_value(r) for r in args.rows]
        if not all(isinstance(r, dict) for r in rows):
            raise ValueError('each row is a JSON object, e.g. \'{"ITEM_NO": "ITM-MINE01"}\'')
        return {"rows": rows}
    body: dict[str, Any] = {"keys": [_key(k) for k in args.keys]}
    if args.action == "update-keys" and args.changes:
        changes = {}
        for item in args.changes:
            column, eq, value = item.partition("=")
            if not eq:
                raise ValueError(f"--set {item!r}: write COLUMN=VALUE")
            changes[column.strip()] = _value(value)
        body["changes"] = changes
    return body


def _change(settings: Settings, args: argparse.Namespace) -> int:
    try:
        body = _body(args)
    except ValueError as exc:
        print(f"syncflow emulators {args.action}: {exc}", file=sys.stderr)
        return 2
    action = "rows" if args.action == "insert-rows" else args.action
    url = f"{settings.apismith_url.rstrip('/')}/admin/entities/{args.entity}/{action}"
    token = settings.apismith_token.get_secret_value()
    try:
        answer = httpx.post(
            url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
    except httpx.HTTPError as exc:
        print(
            f"syncflow emulators {args.action}: no APISmith emulator answers at "
            f"{mask_url(url)} ({type(exc).__name__}); start the local world first: make ui",
            file=sys.stderr,
        )
        return 1
    if answer.status_code != 200:
        detail = answer.text
        with_detail = answer.headers.get("content-type", "").endswith("json")
        if with_detail:
            detail = str(answer.json().get("detail", detail))
        print(
            f"syncflow emulators {args.action}: APISmith refused ({answer.status_code}): {detail}",
            file=sys.stderr,
        )
        return 1
    keys = [",".join(str(v) for v in key) for key in answer.json()["keys"]]
    shown = ", ".join(keys[:10]) + (f", … ({len(keys) - 10} more)" if len(keys) > 10 else "")
    verb = {
        "update": "updated",
        "update-keys": "updated",
        "insert": "inserted",
        "insert-rows": "inserted",
        "delete": "deleted",
        "delete-keys": "deleted",
    }[args.action]
    seed = f" (seed {body['seed']})" if "seed" in body else ""
    print(f"{verb} {len(keys)} {args.entity}{seed}: {shown or '(none matched)'}")
    print(f"the next run of sync_{args.entity}_job carries it to the hub")
    return 0
