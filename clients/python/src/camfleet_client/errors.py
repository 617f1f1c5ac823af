"""Errors a camfleet server reports, one class per wire `ErrorCode`.

Every class carries `code` (the wire's name without its prefix, e.g. "out_of_range") and
the server's message, which says what was wrong and how to fix it. Catch `CamfleetError` for
all of them.
"""

from . import wire


class CamfleetError(Exception):
    """A command or connection failed; `code` says why, the message says what to do."""

    code = "unspecified"

    def __init__(self, message: str, *, request_id: int = 0):
        super().__init__(message)
        self.message = message
        self.request_id = request_id


class UnknownCamera(CamfleetError):
    """No camera has that id; the message lists the cameras."""

    code = "unknown_camera"


class UnknownControl(CamfleetError):
    """The camera has no control by that name; the message lists its controls."""

    code = "unknown_control"


class OutOfRange(CamfleetError):
    """The value does not fit the control; nothing was changed."""

    code = "out_of_range"


class NotPermitted(CamfleetError):
    """The account's role may not do this."""

    code = "not_permitted"


class DeviceRefused(CamfleetError):
    """The device refused the value or cannot take one now."""

    code = "device_refused"


class CameraNotRunning(CamfleetError):
    """The camera is not streaming, so its controls cannot be reached now."""

    code = "camera_not_running"


class Timeout(CamfleetError):
    """No answer in time; the command may be tried again."""

    code = "timeout"


class InvalidMessage(CamfleetError):
    """The server could not read a message this client sent."""

    code = "invalid_message"


class LimitReached(CamfleetError):
    """A server limit is reached (commands in flight, streams, sessions)."""

    code = "limit_reached"


class NotSaved(CamfleetError):
    """The camera made the change, but it will not survive a restart."""

    code = "not_saved"


class WrongHost(CamfleetError):
    """The server does not answer to the host name in the URL (`server.allowed_hosts`)."""

    code = "wrong_host"


class NotSignedIn(CamfleetError):
    """The server has accounts and the credentials are missing or wrong."""

    code = "not_signed_in"


class ConnectionLost(CamfleetError):
    """The connection closed before the answer came; the client reconnects by itself."""

    code = "connection_lost"


_BY_CODE = {
    cls.code: cls
    for cls in (
        UnknownCamera,
        UnknownControl,
        OutOfRange,
        NotPermitted,
        DeviceRefused,
        CameraNotRunning,
        Timeout,
        InvalidMessage,
        LimitReached,
        NotSaved,
        WrongHost,
        NotSignedIn,
    )
}


def from_wire(code: int, message: str, request_id: int = 0) -> CamfleetError:
    """The exception for a wire `ErrorCode` and its message."""
    name = wire.enum_name("ErrorCode", code, "ERROR_CODE_")
    return _BY_CODE.get(name, CamfleetError)(message, request_id=request_id)
