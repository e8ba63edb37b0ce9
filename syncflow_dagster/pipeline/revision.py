"""What decides how a record is mapped, as a version every batch is stamped with."""

from syncflow_dagster.config.models import EntityConfig

# Raise when a release changes how records are normalized or mapped: every
# record is then mapped again instead of being taken as settled.
PIPELINE_REVISION = 2


def mapping_identity(cfg: EntityConfig) -> dict[str, object]:
    """What decides how a record is mapped: the entity's configuration and the code's revision.

    Registered as the batch's mapping version; state written under another
    version is never taken as settled, so a change of either re-maps every
    record. How and when the entity runs (``sync``) and its description do not
    change a record's mapping and are left out.
    """
    mapped = cfg.model_dump(mode="json", by_alias=True, exclude={"sync", "description"})
    return {"pipeline_revision": PIPELINE_REVISION, **mapped}
