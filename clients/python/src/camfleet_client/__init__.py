"""A Python client for camfleet: cameras' status, controls and frames over the server's
WebSocket.

    import asyncio
    from camfleet_client import connect

    async def main():
        async with connect("http://127.0.0.1:8080") as fleet:
            await fleet.set_control("lobby", "brightness", 120)
            async for status in fleet.statuses():
                print(status.camera_id, status.state, status.fps)

    asyncio.run(main())

For scripts without asyncio, `camfleet_client.sync.connect` offers the same calls.
"""

from .errors import (
    CameraNotRunning,
    CamfleetError,
    ConnectionLost,
    DeviceRefused,
    InvalidMessage,
    LimitReached,
    NotPermitted,
    NotSaved,
    NotSignedIn,
    OutOfRange,
    Timeout,
    UnknownCamera,
    UnknownControl,
    WrongHost,
)
from .fleet import Fleet, connect
from .model import Control, ControlProblem, Frame, Status

__all__ = [
    "CameraNotRunning",
    "CamfleetError",
    "ConnectionLost",
    "Control",
    "ControlProblem",
    "DeviceRefused",
    "Fleet",
    "Frame",
    "InvalidMessage",
    "LimitReached",
    "NotPermitted",
    "NotSaved",
    "NotSignedIn",
    "OutOfRange",
    "Status",
    "Timeout",
    "UnknownCamera",
    "UnknownControl",
    "WrongHost",
    "connect",
]
