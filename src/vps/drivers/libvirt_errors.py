"""libvirt's errors in our terms: worth retrying or not, and what to tell about them.

libvirt's own messages name host paths and native ids, so they go to the log only; what
leaves the driver is one of the reasons below.
"""

from __future__ import annotations

import libvirt  # type: ignore[import-untyped, unused-ignore]

from vps.drivers.base import DriverError, PermanentDriverError, RetriableDriverError

_LOST = "the connection to the hypervisor was lost"
_HOST_IO = "reading or writing a file on the hypervisor host failed"
_UNSUPPORTED = "the hypervisor does not support this machine configuration"
_DENIED = "the hypervisor refused access"
_NO_POOL = "the storage pool for machine disks does not exist"
# libvirt error codes (`VIR_ERR_…`) by what they say about trying again, and what the
# failed action tells about them. Codes not listed are retriable: the worker gives up
# after its maximum attempts anyway.
_ERROR_GROUPS: tuple[tuple[type[DriverError], str, tuple[str, ...]], ...] = (
    (RetriableDriverError, _LOST, ("RPC", "NO_CONNECT", "INVALID_CONN")),
    (RetriableDriverError, "a system call on the hypervisor host failed", ("SYSTEM_ERROR",)),
    (RetriableDriverError, "the hypervisor timed out", ("OPERATION_TIMEOUT",)),
    (RetriableDriverError, "the machine changed state meanwhile", ("OPERATION_INVALID",)),
    (RetriableDriverError, "the operation was aborted", ("OPERATION_ABORTED",)),
    (RetriableDriverError, "a resource of the machine is busy", ("RESOURCE_BUSY",)),
    (RetriableDriverError, "the guest agent did not answer", ("AGENT_UNRESPONSIVE",)),
    (RetriableDriverError, "the hypervisor reported an internal error", ("INTERNAL_ERROR",)),
    (RetriableDriverError, "the hypervisor could not do it", ("OPERATION_FAILED",)),
    (RetriableDriverError, "the machine exists already", ("DOM_EXIST", "STORAGE_VOL_EXIST")),
    (RetriableDriverError, _HOST_IO, ("OPEN_FAILED", "READ_FAILED", "WRITE_FAILED")),
    (
        PermanentDriverError,
        _UNSUPPORTED,
        ("NO_SUPPORT", "OPERATION_UNSUPPORTED", "CONFIG_UNSUPPORTED", "ARGUMENT_UNSUPPORTED"),
    ),
    (PermanentDriverError, _UNSUPPORTED, ("INVALID_ARG",)),
    (
        PermanentDriverError,
        "the hypervisor rejected the machine definition",
        ("XML_ERROR", "XML_DETAIL", "XML_INVALID_SCHEMA"),
    ),
    (PermanentDriverError, _NO_POOL, ("NO_STORAGE_POOL", "INVALID_STORAGE_POOL")),
    (PermanentDriverError, "a disk does not exist", ("NO_STORAGE_VOL", "INVALID_STORAGE_VOL")),
    (PermanentDriverError, "the machine does not exist", ("NO_DOMAIN", "INVALID_DOMAIN")),
    (PermanentDriverError, "the machines' network does not exist", ("NO_NETWORK", "NO_INTERFACE")),
    (
        PermanentDriverError,
        _DENIED,
        ("AUTH_FAILED", "AUTH_CANCELLED", "AUTH_UNAVAILABLE", "ACCESS_DENIED", "OPERATION_DENIED"),
    ),
    (PermanentDriverError, "the host CPU cannot run the machine", ("CPU_INCOMPATIBLE",)),
    (PermanentDriverError, "the hypervisor host is out of memory", ("NO_MEMORY",)),
)
ERRORS: dict[int, tuple[type[DriverError], str]] = {
    getattr(libvirt, f"VIR_ERR_{name}"): (kind, reason)
    for kind, reason, names in _ERROR_GROUPS
    for name in names
}
# Whatever its code, a full disk does not empty itself.
_NO_SPACE = ("no space left", "not enough free space", "insufficient space")
CONNECTION_CODES = frozenset(
    (libvirt.VIR_ERR_RPC, libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN)
)
# What a hypervisor answers to undefine flags it does not know.
UNKNOWN_FLAGS = frozenset(
    (
        libvirt.VIR_ERR_INVALID_ARG,
        libvirt.VIR_ERR_NO_SUPPORT,
        libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,
        libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
    )
)


def classify(code: int, message: str) -> tuple[type[DriverError], str]:
    """Whether a libvirt error is worth retrying, and what to tell about it (our words:
    libvirt's message names host paths and native ids, so it goes to the log only)."""
    if any(marker in message.lower() for marker in _NO_SPACE):
        return PermanentDriverError, "the hypervisor host is out of disk space"
    return ERRORS.get(code, (RetriableDriverError, f"unexpected hypervisor error {code}"))
