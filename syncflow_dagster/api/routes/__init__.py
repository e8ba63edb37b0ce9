"""The endpoints, one module per area; :data:`ENDPOINTS` is every one of them, in doc order."""

from syncflow_dagster.api.endpoint import Endpoint
from syncflow_dagster.api.routes import entities, monitoring, schedules, service, sync

ENDPOINTS: list[Endpoint] = [
    *service.ENDPOINTS,
    *sync.ENDPOINTS,
    *entities.ENDPOINTS,
    *monitoring.ENDPOINTS,
    *schedules.ENDPOINTS,
]
