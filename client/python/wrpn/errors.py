"""Exceptions raised by wrpn.Client: one per failed call, carrying the gRPC status code and the
coordinator's own message."""
from __future__ import annotations

import grpc


class WrpnError(Exception):
    """A call to the coordinator failed. `code` is the grpc.StatusCode, `code_name` its name
    (e.g. "NOT_FOUND"), `details` the coordinator's message, `what` the call ("get sweep 7")."""

    def __init__(self, code: grpc.StatusCode, details: str, what: str = ""):
        self.code = code
        self.code_name = code.name
        self.details = details
        self.what = what
        prefix = f"{what}: " if what else ""
        super().__init__(f"{prefix}{code.name}: {details}")


class NotFoundError(WrpnError):
    """No such sweep, trial or worker (NOT_FOUND)."""


class AuthError(WrpnError):
    """Missing, unknown or insufficient token (UNAUTHENTICATED, PERMISSION_DENIED)."""


class InvalidArgumentError(WrpnError):
    """The request or spec was refused (INVALID_ARGUMENT, FAILED_PRECONDITION)."""


class UnavailableError(WrpnError):
    """No coordinator answered at the address (UNAVAILABLE, DEADLINE_EXCEEDED on connect)."""


_BY_CODE = {
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.UNAUTHENTICATED: AuthError,
    grpc.StatusCode.PERMISSION_DENIED: AuthError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.FAILED_PRECONDITION: InvalidArgumentError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
}


def from_rpc_error(err: grpc.RpcError, what: str) -> WrpnError:
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    return _BY_CODE.get(code, WrpnError)(code, details or "", what)
