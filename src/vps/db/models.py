"""Table models. These are persistence, not the API contract (see `vps.api.schemas`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from vps.db.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# See Server.paid_until.
_LONG_AGO = "1970-01-01 00:00:00"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("balance_cents >= 0", name="balance_not_negative"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    balance_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    display_prefix: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(100), default="")
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    account: Mapped[Account] = relationship(lazy="joined")


class Plan(Base):
    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    storage_gb: Mapped[int] = mapped_column(Integer)
    bandwidth_gb: Mapped[int] = mapped_column(Integer)
    monthly_price_cents: Mapped[int] = mapped_column(BigInteger)
    backups_monthly_price_cents: Mapped[int] = mapped_column(BigInteger)
    available: Mapped[bool] = mapped_column(Boolean, default=True)


class OperatingSystem(Base):
    __tablename__ = "operating_systems"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    available: Mapped[bool] = mapped_column(Boolean, default=True)


class Location(Base):
    __tablename__ = "locations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    available: Mapped[bool] = mapped_column(Boolean, default=True)


class IpPool(Base):
    """A range of addresses of one location and family that servers are given from."""

    __tablename__ = "ip_pools"
    __table_args__ = (CheckConstraint("family IN (4, 6)", name="family"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    family: Mapped[int] = mapped_column(Integer)
    cidr: Mapped[str] = mapped_column(String(64), unique=True)
    # First and last host index handed out (skips network, gateway and broadcast).
    first_host: Mapped[int] = mapped_column(BigInteger)
    last_host: Mapped[int] = mapped_column(BigInteger)


class Host(Base):
    """A hypervisor host of a location that servers are placed on.

    `used_*` are the resources of the servers placed on it, kept by placement (a conditional
    increment that cannot pass a `*_limit`) and by deletion; the limits are the capacity
    times the overcommit ratios, computed when the host is registered or changed.
    """

    __tablename__ = "hosts"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'draining')", name="status"),
        CheckConstraint(
            "used_vcpus >= 0 AND used_memory_mb >= 0 AND used_disk_gb >= 0", name="used"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    driver: Mapped[str] = mapped_column(String(20))
    uri: Mapped[str | None] = mapped_column(String(500), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer)
    cpu_overcommit: Mapped[float] = mapped_column(Float)
    memory_overcommit: Mapped[float] = mapped_column(Float)
    disk_overcommit: Mapped[float] = mapped_column(Float)
    vcpu_limit: Mapped[int] = mapped_column(Integer)
    memory_limit_mb: Mapped[int] = mapped_column(Integer)
    disk_limit_gb: Mapped[int] = mapped_column(Integer)
    used_vcpus: Mapped[int] = mapped_column(Integer, default=0)
    used_memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    used_disk_gb: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IpAllocation(Base):
    """An address held by a server. The primary key makes a double allocation impossible."""

    __tablename__ = "ip_allocations"
    __table_args__ = (UniqueConstraint("server_id", "family", name="uq_ip_allocations_server"),)

    pool_id: Mapped[int] = mapped_column(ForeignKey("ip_pools.id"), primary_key=True)
    host_index: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    address: Mapped[str] = mapped_column(String(64), unique=True)
    family: Mapped[int] = mapped_column(Integer)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id"))
    allocated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SshKey(Base):
    __tablename__ = "ssh_keys"
    __table_args__ = (
        UniqueConstraint("account_id", "fingerprint", name="uq_ssh_keys_account_fingerprint"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Server(Base):
    __tablename__ = "servers"
    __table_args__ = (
        Index("ix_servers_account_visible", "account_id", "deleted_at", "id"),
        Index("ix_servers_status", "status"),
        Index("ix_servers_paid_until", "paid_until"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(63))
    hostname: Mapped[str | None] = mapped_column(String(253), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    os_id: Mapped[int] = mapped_column(ForeignKey("operating_systems.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    # The hypervisor host it was placed on; None: the worker's default driver (a location
    # with no registered host).
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"), nullable=True, index=True)
    ssh_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("ssh_keys.id", ondelete="SET NULL"), nullable=True
    )
    # The key is copied so deleting it from the account never changes a machine being built.
    ssh_public_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    backups_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    ipv4_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ipv6_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Worker bookkeeping: who holds the server, until when, and when to try again.
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Billing: the current paid period is [paid_from, paid_until) and `billing_period` is its
    # number (1 is the one the create charged); renewals compare-and-set on the number. The
    # server defaults only filled the rows that predate billing (migration 0002 backfills
    # them); the application always writes the period itself.
    paid_from: Mapped[datetime] = mapped_column(UTCDateTime, server_default=_LONG_AGO)
    paid_until: Mapped[datetime] = mapped_column(UTCDateTime, server_default=_LONG_AGO)
    billing_period: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # A suspension still has to power the machine off; cleared by the worker that did it.
    power_off_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Bumped on every write: the fencing token of workers and a future ETag.
    version: Mapped[int] = mapped_column(Integer, default=1)

    plan: Mapped[Plan] = relationship(lazy="joined", innerjoin=True)
    os: Mapped[OperatingSystem] = relationship(lazy="joined", innerjoin=True)
    location: Mapped[Location] = relationship(lazy="joined", innerjoin=True)
    usage: Mapped[ServerUsage | None] = relationship(lazy="joined", uselist=False)


class ServerUsage(Base):
    """Latest resource usage sampled from the driver by a worker."""

    __tablename__ = "server_usage"

    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id"), primary_key=True)
    cpu_percent: Mapped[float] = mapped_column(Float)
    memory_used_mb: Mapped[int] = mapped_column(Integer)
    disk_used_gb: Mapped[int] = mapped_column(Integer)
    bandwidth_used_gb: Mapped[int] = mapped_column(Integer)
    sampled_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Action(Base):
    """One thing asked of a server (create, start, stop, reboot, delete) and how it ended."""

    __tablename__ = "actions"
    __table_args__ = (
        Index("ix_actions_server", "server_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id"))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)


class CreditTransaction(Base):
    """Append-only ledger. `reference` is unique so a charge or refund happens at most once."""

    __tablename__ = "credit_transactions"
    __table_args__ = (
        Index("ix_credit_transactions_account", "account_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(20))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    balance_after_cents: Mapped[int] = mapped_column(BigInteger)
    server_id: Mapped[int | None] = mapped_column(ForeignKey("servers.id"), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    description: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IdempotencyKey(Base):
    """The remembered outcome of a POST sent with an `Idempotency-Key`, for replays.

    Written in the transaction of the work it records, so a key exists exactly when its
    work committed. `fingerprint` is a hash of the method, path and body: the same key with
    another request is refused.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("account_id", "key", name="uq_idempotency_keys_account_key"),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(255))
    token_id: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int] = mapped_column(Integer)
    # The headers that belong to the answer (JSON object), and the body byte for byte.
    response_headers: Mapped[str] = mapped_column(Text)
    response_body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """One mutation asked of the API by an account's token, and how it ended.

    A success is written in the transaction of the change itself; a refusal (a 4xx) in a
    transaction of its own once the change has rolled back.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_account", "account_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    token_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(40))
    target_type: Mapped[str] = mapped_column(String(20))
    target_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(255))
    status_code: Mapped[int] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ServerEvent(Base):
    """A change of a server's status or of an action, as the event streams deliver it.

    Ids are given at commit, from `EventLog`, in commit order (see
    `vps.db.repositories.events`): a reader that has seen id `n` has seen every event that
    will ever have a smaller id, which makes `Last-Event-ID` resumption exact.
    """

    __tablename__ = "server_events"
    __table_args__ = (
        Index("ix_server_events_account", "account_id", "id"),
        Index("ix_server_events_server", "server_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    server_id: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))
    # The event as streamed (JSON, with its id), encoded once when it is written.
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EventLog(Base):
    """One row: the last event id given, and the highest id deleted by retention (a stream
    resumed from before it has missed events, and is told so)."""

    __tablename__ = "event_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(BigInteger)
    pruned_through: Mapped[int] = mapped_column(BigInteger)
