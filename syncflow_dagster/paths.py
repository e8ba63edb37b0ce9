"""Where the project's shipped files live (configuration, contracts)."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
CONFIG_DIR = PROJECT_DIR / "config"
ENTITIES_DIR = CONFIG_DIR / "entities"
SCHEDULEHUB_SCHEMAS = CONFIG_DIR / "schedulehub" / "entities.yaml"
CONTRACTS_DIR = PACKAGE_DIR / "emulators" / "contracts"
