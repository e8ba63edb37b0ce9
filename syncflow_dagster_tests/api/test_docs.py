"""Every command docs/API.md shows in a ``sh`` block runs, as written, against a served API.

The API is served over loopback with both emulators, a seeded state store and
a Dagster stand-in; the blocks run in order in one bash with ``set -e`` (the
examples use ``curl -f`` where the answer must be a success).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

from syncflow_dagster.api.app import create_app
from syncflow_dagster.api.dagster import Instigator
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.emulators.common.serving import serve_in_thread
from syncflow_dagster.paths import PROJECT_DIR
from syncflow_dagster.testing.apismith import running_apismith
from syncflow_dagster.testing.schedulehub import running_schedulehub
from syncflow_dagster_tests.api.conftest import (
    JWT_SECRET,
    OPERATOR_TOKEN,
    READ_TOKEN,
    FakeDagster,
    api_settings,
)
from syncflow_dagster_tests.api.test_openapi import _seed

DOC = PROJECT_DIR / "docs" / "API.md"


def _blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_every_sh_block_of_the_api_doc_runs(tmp_path: Path) -> None:
    blocks = _blocks()
    assert len(blocks) >= 8 and all("curl" in b for b in blocks)
    script = "set -euo pipefail\n" + "\n".join(blocks)
    script = script.replace("uv run python", sys.executable)
    with running_apismith(DatasetSpec(work_orders=10)) as erp, running_schedulehub() as hub:
        settings = api_settings(
            tmp_path,
            apismith_url=erp.url,
            apismith_token=erp.token,
            schedulehub_url=hub.url,
            schedulehub_token=hub.token,
        )
        store = StateStore.from_settings(settings).ensure_schema()
        _seed(store)
        dagster = FakeDagster()
        for name, kind in (
            ("sync_items_schedule", "schedule"),
            ("background_sync_sensor", "sensor"),
        ):
            dagster.switches[name] = Instigator(name, kind, "RUNNING")
        app = create_app(settings, store=store, dagster=dagster)
        with serve_in_thread(app) as url:
            env = {
                **os.environ,
                "API": url,
                "TOKEN": OPERATOR_TOKEN,
                "READ_TOKEN": READ_TOKEN,
                "API_JWT_SECRET": JWT_SECRET,
            }
            done = subprocess.run(
                ["bash", "-c", script],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        store.dispose()
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    out = done.stdout
    assert '"status":"healthy"' in out
    assert "syncflow_batch_fetched_total" in out
    assert '"action":"created"' in out and '"action":"deleted"' in out
    assert '"status":401' in out and '"status":403' in out and '"status":422' in out
    jobs = [job for job, _, _ in dagster.launched]
    assert jobs == ["sync_items_job", "sync_work_orders_job", "resolve_failed_records_job"]
    assert not (settings.entities_dir / "machines.yaml").exists()
    assert dagster.switches["sync_items_schedule"].status == "STOPPED"
    assert dagster.switches["background_sync_sensor"].status == "RUNNING"
