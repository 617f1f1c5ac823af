"""The client for scripts without asyncio: the same calls, blocking.

    from camfleet_client.sync import connect

    with connect("http://127.0.0.1:8080") as fleet:
        print(fleet.set_control("lobby", "brightness", 120))
        for status in fleet.statuses():
            print(status.camera_id, status.fps)

The connection lives on an event loop in a background thread, so pings are answered and
the connection is kept while the script does other things.
"""

import asyncio
import threading
from typing import Iterator, List, Optional, Union

from . import fleet as aio
from .model import Control, Frame, Status


class Fleet:
    """A blocking connection to one camfleet server; see `camfleet_client.Fleet`."""

    def __init__(self, url: str, **options):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="camfleet-client", daemon=True
        )
        self._thread.start()
        try:
            self._fleet = self._call(self._open(url, options))
        except BaseException:
            self._stop_loop()
            raise

    @staticmethod
    async def _open(url, options) -> aio.Fleet:
        return await aio.Fleet(url, **options).open()

    def _call(self, coroutine, timeout: Optional[float] = None):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def close(self) -> None:
        """Closes the connection and its thread."""
        if self._loop.is_closed():
            return
        try:
            self._call(self._fleet.close())
        finally:
            self._stop_loop()

    def __enter__(self) -> "Fleet":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def hello(self):
        """The server's greeting (version, account, role)."""
        return self._fleet.hello

    @property
    def reconnects(self) -> int:
        """How often the connection was opened again after it dropped."""
        return self._fleet.reconnects

    def cameras(self) -> List[Status]:
        return self._call(self._fleet.cameras())

    def controls(self, camera: str) -> List[Control]:
        return self._call(self._fleet.controls(camera))

    def set_control(self, camera: str, control: str, value: Union[int, bool, str]) -> Optional[int]:
        return self._call(self._fleet.set_control(camera, control, value))

    def reset_controls(self, camera: str) -> None:
        self._call(self._fleet.reset_controls(camera))

    def frame(self, camera: str) -> Frame:
        return self._call(self._fleet.frame(camera))

    def statuses(self, *cameras: str) -> Iterator[Status]:
        return self._iterate(self._fleet.statuses(*cameras))

    def frames(self, camera: str, *, max_fps: int = 0) -> Iterator[Frame]:
        return self._iterate(self._fleet.frames(camera, max_fps=max_fps))

    def _iterate(self, iterator):
        try:
            while True:
                try:
                    yield self._call(iterator.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            if not self._loop.is_closed():
                self._call(iterator.aclose())


def connect(url: str, **options) -> Fleet:
    """Connects to the camfleet server at `url`; the options are `camfleet_client.connect`'s."""
    return Fleet(url, **options)
