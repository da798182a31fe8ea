"""Settings: one value, built once from the environment and passed down explicitly.

Nothing in the package reads the environment at import time; `Settings()` is built by the
CLI (or a test) and handed to `create_app` and to the worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from limits import RateLimitItem, parse_many
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "vps"


def parse_images(text: str) -> dict[str, str]:
    """`slug=volume,slug=volume` as a mapping (VPS_LIBVIRT_IMAGES)."""
    images: dict[str, str] = {}
    for pair in filter(None, (item.strip() for item in text.split(","))):
        slug, equals, volume = (part.strip() for part in pair.partition("="))
        if not equals or not slug or not volume:
            raise ValueError(f"VPS_LIBVIRT_IMAGES: {pair!r} is not `slug=volume`")
        if slug in images:
            raise ValueError(f"VPS_LIBVIRT_IMAGES: {slug!r} is given twice")
        images[slug] = volume
    return images


def parse_rate_limits(text: str) -> list[RateLimitItem]:
    """`250/minute;5000/hour` as limit items, shortest window first; `off` or empty: none.

    Raises `ValueError` for a string the `limits` notation does not accept, or for two
    limits over the same window (they would be one policy under two names).
    """
    if text.strip().lower() in ("", "off"):
        return []
    try:
        items = parse_many(text)
    except ValueError as error:
        raise ValueError(
            f"VPS_RATE_LIMITS must look like '250/minute;5000/hour' or be 'off': {error}"
        ) from None
    if any(item.amount < 1 for item in items):
        raise ValueError("VPS_RATE_LIMITS: every limit must allow at least one request")
    windows = [item.get_expiry() for item in items]
    if len(set(windows)) != len(windows):
        raise ValueError("VPS_RATE_LIMITS has two limits over the same window")
    return sorted(items, key=lambda item: item.get_expiry())


class Settings(BaseSettings):
    """Every setting of the service; each one is `VPS_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="VPS_", extra="ignore")

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Directory for the SQLite database and other local state.",
    )
    database_url: str | None = Field(
        default=None,
        description="`sqlite:///path` or `postgresql://user@host/db`; "
        "default: a SQLite file in the data directory.",
    )
    database_pool_size: int = Field(
        default=5,
        ge=1,
        le=100,
        description="PostgreSQL connections each process keeps (as many again in bursts, "
        "and up to 4 more for the API's reads): mind the server's `max_connections`.",
    )
    host: str = Field(default="127.0.0.1", description="Address `vps serve` binds to.")
    port: int = Field(default=8000, description="Port `vps serve` listens on.")
    public_url: str | None = Field(
        default=None,
        description="Base URL used in pagination links; default: taken from each request.",
    )
    auto_migrate: bool = Field(
        default=True, description="Apply pending migrations when `vps serve` starts."
    )
    demo: bool = Field(
        default=True,
        description="On first start with an empty SQLite database on a loopback address, "
        "create a demo account and print its token.",
    )
    demo_credits: str = Field(default="100.00", description="Credits given to the demo account.")
    embedded_worker: bool = Field(
        default=True, description="Run the lifecycle worker inside `vps serve`."
    )
    driver: Literal["simulator", "libvirt"] = Field(
        default="simulator",
        description="Hypervisor driver: `simulator`, or `libvirt` (KVM or QEMU through "
        "libvirt; install `vps[libvirt]`, see docs/operators.md).",
    )
    libvirt_uri: str = Field(
        default="qemu:///system",
        description="libvirt: the connection URI (`qemu:///system`, `qemu+ssh://host/system`; "
        "`test:///default` is libvirt's in-process fake).",
    )
    libvirt_domain_type: Literal["kvm", "qemu"] = Field(
        default="kvm",
        description="libvirt: `kvm` (hardware virtualisation) or `qemu` (software emulation, "
        "slow but runs anywhere).",
    )
    libvirt_storage_pool: str = Field(
        default="default",
        min_length=1,
        description="libvirt: the storage pool that holds the base images and the servers' "
        "disks and cloud-init seeds.",
    )
    libvirt_images: str = Field(
        default="",
        description="libvirt: each OS's base image, as `slug=volume` pairs separated by commas "
        "(`ubuntu-22.04=jammy.qcow2,debian-12=bookworm.qcow2`); a server of an OS without one "
        "fails to build (refunded).",
    )
    libvirt_bridge: str | None = Field(
        default=None,
        description="libvirt: the host bridge the guests' network interface joins; unset: "
        "guests get no network interface.",
    )
    libvirt_shutdown_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="libvirt: how long a stop waits for the guest to shut down (ACPI) before "
        "forcing it off.",
    )
    libvirt_reboot_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="libvirt: how long a reboot waits for the guest to shut down (ACPI) before "
        "forcing it off; it is then started again.",
    )
    sim_provision_seconds: float = Field(
        default=5.0, ge=0, description="Simulator: time a server takes to provision."
    )
    sim_action_seconds: float = Field(
        default=2.0, ge=0, description="Simulator: time a start, stop or reboot takes."
    )
    sim_delete_seconds: float = Field(
        default=0.5, ge=0, description="Simulator: time destroying a machine takes."
    )
    sim_failure_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Simulator: share of driver calls that fail with a retriable error.",
    )
    sim_state_file: Path | None = Field(
        default=None,
        description="Simulator: keep machines in this file, shared by every process that "
        "names it (several workers); default: in each process's memory.",
    )
    worker_concurrency: int = Field(
        default=16, ge=1, description="Servers one worker drives at the same time."
    )
    worker_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        description="How often an idle worker looks for work (on PostgreSQL it is also woken "
        "by NOTIFY).",
    )
    worker_lease_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How long a worker's claim on a server lasts without a heartbeat; "
        "a dead worker's servers are taken over after this.",
    )
    worker_max_attempts: int = Field(
        default=5, ge=1, description="Attempts at a retriable driver failure before giving up."
    )
    worker_retry_base_seconds: float = Field(
        default=1.0, gt=0, description="First retry delay; doubles on each attempt."
    )
    worker_retry_max_seconds: float = Field(
        default=60.0, gt=0, description="Cap on the retry delay."
    )
    build_timeout_seconds: float = Field(
        default=900.0,
        gt=0,
        description="A build still unfinished this long after the create fails with "
        "`build_timeout` and is refunded.",
    )
    worker_orphan_sweep_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often a worker destroys machines whose server is gone or failed.",
    )
    usage_sample_seconds: float = Field(
        default=10.0, gt=0, description="How often the worker refreshes resource usage."
    )
    billing_period_seconds: int = Field(
        default=2_592_000,
        gt=0,
        description="Seconds in a billing period (a month; default 30 days): each server is "
        "charged its plan's monthly price per period, in advance, and is refunded the unused "
        "whole hours of the period when it is deleted.",
    )
    idempotency_retention_seconds: int = Field(
        default=86_400,
        gt=0,
        description="How long the outcome of a POST sent with an `Idempotency-Key` is "
        "remembered (a retry after this does the work again); expired keys are deleted by "
        "the worker.",
    )
    page_size_default: int = Field(default=50, ge=1, description="Default list page size.")
    page_size_max: int = Field(default=100, ge=1, description="Largest page size accepted.")
    log_level: str = Field(default="info", description="Log level: debug, info, warning, error.")
    rate_limits: str = Field(
        default="250/minute;5000/hour",
        description="Requests each API token (or, without a valid-looking token, each client "
        "address) may make, in the `limits` notation (`250/minute;5000/hour`); `off` or empty "
        "turns rate limiting off.",
    )
    redis_url: str | None = Field(
        default=None,
        description="`redis://host:port/db`: share the rate-limit counters between every API "
        "process through Redis; default: each process counts in its own memory.",
    )
    redis_key_prefix: str = Field(
        default="vps-ratelimit",
        min_length=1,
        description="Prefix of the rate-limit keys in Redis, so that several deployments can "
        "share one Redis without sharing counters.",
    )
    max_body_bytes: int = Field(
        default=65_536,
        ge=1,
        description="Largest request body accepted, in bytes; a larger one is refused with `413`.",
    )
    audit_retention_seconds: int = Field(
        default=31_536_000,
        gt=0,
        description="How long the audit log keeps an event (365 days); older ones are "
        "deleted by the worker.",
    )
    event_retention_seconds: int = Field(
        default=259_200,
        gt=0,
        description="How long server and action events are kept (3 days): a stream resumed "
        "with `Last-Event-ID` within this replays what it missed; older events are deleted by "
        "the worker.",
    )
    event_heartbeat_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Seconds between heartbeat comments on an idle event stream (keeps proxies "
        "from closing it and lets a client notice a dead connection).",
    )
    event_poll_seconds: float = Field(
        default=0.1,
        gt=0,
        description="How often each API process looks for new events while someone is "
        "streaming or long-polling (writes made in the same process are seen at once).",
    )
    event_streams_per_account: int = Field(
        default=20,
        ge=1,
        description="Event streams one account may hold open on each API process; one more "
        "is refused with `429 too_many_streams`.",
    )
    emulator_controls: bool = Field(
        default=False,
        description="Serve the simulator's fault-injection and account controls at "
        "`/_emulator/` (timings, injected failures, funded accounts, balances), for client "
        "developers' test suites. Unauthenticated: never enable it in production.",
    )
    panel: bool = Field(
        default=True,
        description="Serve the web control panel at `/` (a client of the API; users sign in "
        "with an API token). `false`: the API alone.",
    )

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(
            ("sqlite:", "sqlite+aiosqlite:", "postgresql:", "postgres:", "postgresql+asyncpg:")
        ):
            raise ValueError("VPS_DATABASE_URL must start with sqlite:// or postgresql://")
        return value

    @field_validator("libvirt_images")
    @classmethod
    def _parsable_images(cls, value: str) -> str:
        parse_images(value)
        return value

    @field_validator("rate_limits")
    @classmethod
    def _parsable_rate_limits(cls, value: str) -> str:
        # Parsed here so that a typo stops the service at startup, not at its first request.
        parse_rate_limits(value)
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("redis://", "rediss://", "redis+unix://")):
            raise ValueError("VPS_REDIS_URL must start with redis://, rediss:// or redis+unix://")
        return value

    @property
    def rate_limit_items(self) -> list[RateLimitItem]:
        """The rate limits, shortest window first; empty when rate limiting is off."""
        return parse_rate_limits(self.rate_limits)

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL with the async driver of its database."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'vps.db'}"
        for prefix, replacement in (
            ("sqlite+aiosqlite://", "sqlite+aiosqlite://"),
            ("sqlite://", "sqlite+aiosqlite://"),
            ("postgresql+asyncpg://", "postgresql+asyncpg://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
        ):
            if url.startswith(prefix):
                return replacement + url[len(prefix) :]
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")
