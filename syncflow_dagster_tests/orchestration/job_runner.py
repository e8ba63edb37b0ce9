"""Run one SyncFlow job in a process of its own, so a test can kill it mid-run.

    python -m syncflow_dagster_tests.orchestration.job_runner JOB RUN_CONFIG_JSON SETTINGS_JSON

Tokens and DATABASE_URL come from the environment, as in production.
"""

import sys

import dagster as dg
import orjson

from syncflow_dagster.orchestration.build import build_definitions
from syncflow_dagster.settings import load_settings
from syncflow_dagster_tests.orchestration.conftest import PARTITION


def main(argv: list[str]) -> int:
    """Run the job; exit 0 when it succeeded."""
    job, run_config, overrides = argv
    defs = build_definitions(load_settings(**orjson.loads(overrides)))
    with dg.instance_for_test() as instance:
        result = defs.get_job_def(job).execute_in_process(
            run_config=orjson.loads(run_config),
            instance=instance,
            partition_key=PARTITION,
            raise_on_error=False,
        )
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
