"""Python SDK for the VPS.org Servers API.

```python
from vps import Client

with Client() as client:  # VPS_API_URL and VPS_TOKEN from the environment
    server = client.servers.create(name="web-1", plan_id=1, os_id=5, location="us-west")
    server = server.wait_until("active")
```

`AsyncClient` has the same interface with coroutines and async iterators.
"""

from vps.client._async import AsyncClient, AsyncEventStream
from vps.client._core import UNSET, RetryPolicy, Unset
from vps.client._sync import Client, EventStream
from vps.client.errors import (
    ApiError,
    BadRequest,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    IdempotencyKeyReused,
    InsufficientCredits,
    InvalidState,
    LocationFull,
    NotFound,
    PreconditionFailed,
    RateLimited,
    ServerError,
    Unauthenticated,
    VpsError,
    WaitFailed,
    WaitTimeout,
)
from vps.client.models import (
    STABLE_STATUSES,
    Account,
    Action,
    AsyncServer,
    AuditEvent,
    AuditTarget,
    ErrorInfo,
    Event,
    Location,
    OperatingSystem,
    OperatingSystemSummary,
    Page,
    Plan,
    PlanSummary,
    ResourceUsage,
    Server,
    ServerBase,
    SshKey,
    Transaction,
)

__all__ = [
    "STABLE_STATUSES",
    "UNSET",
    "Account",
    "Action",
    "ApiError",
    "AsyncClient",
    "AsyncEventStream",
    "AsyncServer",
    "AuditEvent",
    "AuditTarget",
    "BadRequest",
    "Client",
    "ConfigurationError",
    "Conflict",
    "ConnectionFailed",
    "ErrorInfo",
    "Event",
    "EventStream",
    "Forbidden",
    "IdempotencyKeyReused",
    "InsufficientCredits",
    "InvalidState",
    "Location",
    "LocationFull",
    "NotFound",
    "OperatingSystem",
    "OperatingSystemSummary",
    "Page",
    "Plan",
    "PlanSummary",
    "PreconditionFailed",
    "RateLimited",
    "ResourceUsage",
    "RetryPolicy",
    "Server",
    "ServerBase",
    "ServerError",
    "SshKey",
    "Transaction",
    "Unauthenticated",
    "Unset",
    "VpsError",
    "WaitFailed",
    "WaitTimeout",
]
