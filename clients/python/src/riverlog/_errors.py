"""Typed exceptions for riverlog's gRPC errors.

Every riverlog error carries a ``google.rpc.ErrorInfo`` detail (domain
``riverlog.dev``) in the ``grpc-status-details-bin`` trailer; its ``reason``
is a stable machine-readable code such as ``STREAM_NOT_FOUND``. The client
converts each failed call into a :class:`RiverlogError` subclass chosen by
reason first, then by gRPC status code.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

import grpc
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "RiverlogError",
    "NotFoundError",
    "AlreadyExistsError",
    "InvalidArgumentError",
    "FailedPreconditionError",
    "WrongExpectedSequenceError",
    "UnauthenticatedError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnavailableError",
    "error_info",
    "error_reason",
    "retry_delay",
]

_STATUS_DETAILS_KEY = "grpc-status-details-bin"
_ERROR_INFO_TYPE = "google.rpc.ErrorInfo"
_RETRY_INFO_TYPE = "google.rpc.RetryInfo"


class RiverlogError(grpc.RpcError):
    """A failed riverlog call.

    Subclasses ``grpc.RpcError`` and, like a failed ``grpc.Call``, answers
    ``code()`` and ``details()``, so code written against raw gRPC errors keeps
    working.

    Attributes:
        message: The server's human-readable message (same as ``details()``).
        reason: The stable ``ErrorInfo.reason`` (e.g. ``"STREAM_NOT_FOUND"``),
            or ``None`` when the error carried no ErrorInfo (e.g. a transport
            failure produced by the client library itself).
        domain: The ``ErrorInfo.domain`` (``"riverlog.dev"``), or ``None``.
        metadata: The ``ErrorInfo.metadata`` map (may be empty).
        retry_delay: Seconds after which retrying may succeed, from the
            ``google.rpc.RetryInfo`` detail (``RATE_LIMITED``), or ``None``.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        reason: Optional[str] = None,
        domain: Optional[str] = None,
        metadata: Optional[Dict[str, str]] = None,
        retry_delay: Optional[float] = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}" + (f" [{reason}]" if reason else ""))
        self._code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata = dict(metadata or {})
        self.retry_delay = retry_delay

    def code(self) -> grpc.StatusCode:
        """The gRPC status code."""
        return self._code

    def details(self) -> str:
        """The server's human-readable message."""
        return self.message

    @classmethod
    def from_rpc_error(cls, err: grpc.RpcError) -> "RiverlogError":
        """Converts a raw ``grpc.RpcError`` into the matching subclass."""
        if isinstance(err, RiverlogError):
            return err
        code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
        message = err.details() if hasattr(err, "details") else str(err)
        info = error_info(err)
        reason = info.reason if info is not None else None
        subclass = _BY_REASON.get(reason or "") or _BY_CODE.get(code, RiverlogError)
        exc = subclass(
            code,
            message or "",
            reason,
            info.domain if info is not None else None,
            dict(info.metadata) if info is not None else None,
            retry_delay(err),
        )
        exc.__cause__ = err
        return exc


class NotFoundError(RiverlogError):
    """NOT_FOUND: e.g. ``STREAM_NOT_FOUND``, a missing group or checkpoint."""


class AlreadyExistsError(RiverlogError):
    """ALREADY_EXISTS: e.g. ``STREAM_ALREADY_EXISTS``, an existing group."""


class InvalidArgumentError(RiverlogError):
    """INVALID_ARGUMENT: a bad stream name, pattern, event, ..."""


class FailedPreconditionError(RiverlogError):
    """FAILED_PRECONDITION: the log is not in the state the call requires."""


class WrongExpectedSequenceError(FailedPreconditionError):
    """``WRONG_EXPECTED_SEQUENCE``: an optimistic-concurrency publish lost."""


class UnauthenticatedError(RiverlogError):
    """UNAUTHENTICATED: no token, or an unknown one."""


class PermissionDeniedError(RiverlogError):
    """PERMISSION_DENIED: the token may not do this on this stream."""


class ResourceExhaustedError(RiverlogError):
    """RESOURCE_EXHAUSTED: a size, rate or count limit was hit."""


class UnavailableError(RiverlogError):
    """UNAVAILABLE: the server is down, unreachable or shutting down."""


_BY_REASON: Dict[str, Type[RiverlogError]] = {
    "WRONG_EXPECTED_SEQUENCE": WrongExpectedSequenceError,
}

_BY_CODE: Dict[grpc.StatusCode, Type[RiverlogError]] = {
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
}


def error_info(err: BaseException) -> Optional[error_details_pb2.ErrorInfo]:
    """Returns the ``google.rpc.ErrorInfo`` detail of a gRPC error, if any.

    Works on raw ``grpc.RpcError`` objects (as raised by the generated stubs)
    and on :class:`RiverlogError` (whose cause is the raw error).
    """
    if isinstance(err, RiverlogError):
        if err.reason is None:
            return None
        return error_details_pb2.ErrorInfo(
            reason=err.reason, domain=err.domain or "", metadata=err.metadata
        )
    detail = _status_detail(err, _ERROR_INFO_TYPE)
    if detail is None:
        return None
    info = error_details_pb2.ErrorInfo()
    detail.Unpack(info)
    return info


def retry_delay(err: BaseException) -> Optional[float]:
    """Seconds after which retrying may succeed (``google.rpc.RetryInfo``), if
    the error says (``RATE_LIMITED`` does)."""
    if isinstance(err, RiverlogError):
        return err.retry_delay
    detail = _status_detail(err, _RETRY_INFO_TYPE)
    if detail is None:
        return None
    info = error_details_pb2.RetryInfo()
    detail.Unpack(info)
    return info.retry_delay.ToTimedelta().total_seconds()


def _status_detail(err: BaseException, type_name: str):
    """The ``google.rpc.Status`` detail of that type in a raw gRPC error's
    trailers, as an ``Any``, if present."""
    trailing = getattr(err, "trailing_metadata", None)
    if trailing is None:
        return None
    try:
        metadata = trailing() or ()
    except Exception:  # pragma: no cover - defensive: odd RpcError subclasses
        return None
    for key, value in metadata:
        if key != _STATUS_DETAILS_KEY:
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except Exception:
            return None
        for detail in status.details:
            if detail.type_url.rsplit("/", 1)[-1] == type_name:
                return detail
    return None


def error_reason(err: BaseException) -> Optional[str]:
    """Returns the stable ``ErrorInfo.reason`` of an error (``None`` if absent)."""
    info = error_info(err)
    return info.reason if info is not None else None
