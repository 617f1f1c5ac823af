"""The asyncio client: one WebSocket to a camfleet server, its cameras, their controls
and frames.

    async with connect("http://127.0.0.1:8080", token=...) as fleet:
        async for status in fleet.statuses():
            print(status.camera_id, status.controls.get("brightness"), status.fps)

One task reads the connection all the time, so the server's pings are answered however
slowly the caller reads; a caller that falls behind loses the oldest statuses and all but
the newest frames, never the connection. When the connection drops, the client opens a new
one with growing pauses (0.5 s, doubling, at most `max_backoff`) and subscribes again;
iterators carry on, and commands in flight raise `ConnectionLost`.
"""

import asyncio
import base64
import logging
import random
import urllib.parse
from typing import AsyncIterator, Dict, List, Optional, Tuple, Union

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from . import errors, wire
from .model import Control, Frame, Status

log = logging.getLogger("camfleet_client")

#: How long a command waits for its answer, in seconds.
DEFAULT_TIMEOUT = 10.0
#: The first pause before reconnecting, in seconds; each failure doubles it.
FIRST_BACKOFF = 0.5
#: The longest pause between reconnection attempts, in seconds.
MAX_BACKOFF = 10.0
#: Statuses kept per `statuses()` iterator for a caller that reads slowly; older ones go.
STATUS_BACKLOG = 256
#: Frames kept per `frames()` iterator; older ones go, so a slow reader sees the newest.
FRAME_BACKLOG = 2
#: The largest message accepted from the server (a JPEG frame of a large camera).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def ws_url(url: str) -> Tuple[str, Optional[str]]:
    """The WebSocket URL for a server URL (http://, https://, ws:// or wss://, with or
    without `/ws` and a path prefix), and the `user:password@` in it as HTTP Basic
    credentials."""
    parts = urllib.parse.urlsplit(url)
    scheme = {"http": "ws", "ws": "ws", "https": "wss", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"`{url}` is not a camfleet URL; write it as http://HOST:PORT")
    basic = None
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        basic = _basic(user, password)
    host = parts.netloc.rsplit("@", 1)[-1]
    path = parts.path.rstrip("/")
    if not path.endswith("/ws"):
        path += "/ws"
    return f"{scheme}://{host}{path}", basic


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _offer(queue: asyncio.Queue, item) -> None:
    """Queues `item`, dropping the oldest entry when the queue is full."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)


class Fleet:
    """A connection to one camfleet server. Make it with `connect()` and use it with
    `async with`, or `await fleet.open()` and `await fleet.close()`."""

    def __init__(
        self,
        url: str,
        *,
        token: Optional[str] = None,
        user: Optional[str] = None,
        password: Optional[str] = None,
        ssl=None,
        timeout: float = DEFAULT_TIMEOUT,
        reconnect: bool = True,
        max_backoff: float = MAX_BACKOFF,
    ):
        self.url, basic = ws_url(url)
        if user is not None:
            basic = _basic(user, password or "")
        self._headers: Dict[str, str] = {}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        elif basic:
            self._headers["Authorization"] = f"Basic {basic}"
        self._ssl = ssl
        self._timeout = timeout
        self._reconnect = reconnect
        self._max_backoff = max_backoff
        self._ws = None
        self._reader: Optional[asyncio.Task] = None
        #: Set while a connection is open; made in open(), on the loop that runs it.
        self._connected: Optional[asyncio.Event] = None
        self._closing = False
        #: Set when the client has given up: the iterators and commands raise it.
        self._failure: Optional[errors.CamfleetError] = None
        self._next_id = 0
        self._pending: Dict[int, asyncio.Future] = {}
        self._list_waiters: List[asyncio.Future] = []
        self._status_queues: List[Tuple[Optional[frozenset], asyncio.Queue]] = []
        self._frame_queues: Dict[str, List[Tuple[asyncio.Queue, int]]] = {}
        self._background: set = set()
        #: The server's greeting on the current connection (version, account, role).
        self.hello = None
        #: How often the connection was opened again after it dropped.
        self.reconnects = 0
        #: This connection's delivery counters, as the server last sent them.
        self.session_stats = None

    # -- connection ---------------------------------------------------------------------

    async def open(self) -> "Fleet":
        """Connects, or raises what went wrong (`NotSignedIn`, `WrongHost`, `OSError`)."""
        self._connected = asyncio.Event()
        await self._open_socket()
        self._reader = asyncio.create_task(self._run(), name="camfleet-reader")
        return self

    async def close(self) -> None:
        """Closes the connection; iterators end with `ConnectionLost`."""
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            # Between attempts to reconnect it may be pausing: no need to wait that out.
            self._reader.cancel()
            try:
                await self._reader
            except asyncio.CancelledError:
                pass
        self._give_up(errors.ConnectionLost("the client was closed"))

    async def __aenter__(self) -> "Fleet":
        return await self.open()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def __await__(self):
        return self.open().__await__()

    async def _open_socket(self) -> None:
        options = dict(
            additional_headers=self._headers,
            max_size=MAX_MESSAGE_BYTES,
            open_timeout=self._timeout,
            close_timeout=2,
        )
        if self._ssl is not None:
            options["ssl"] = self._ssl
        try:
            ws = await ws_connect(self.url, **options)
        except InvalidStatus as e:
            status = e.response.status_code
            body = (e.response.body or b"").decode("utf-8", "replace").strip()
            if status == 401:
                raise errors.NotSignedIn(
                    body or f"{self.url} needs an account: pass token= or user= and password="
                ) from None
            if status == 421:
                raise errors.WrongHost(body or f"{self.url} does not answer to this host name") from None
            raise errors.CamfleetError(
                f"{self.url} refused the WebSocket with HTTP {status}: {body}"
            ) from None
        try:
            first = wire.ServerMessage.FromString(
                await asyncio.wait_for(ws.recv(), self._timeout)
            )
        except Exception:
            await ws.close()
            raise
        if first.WhichOneof("kind") != "hello":
            await ws.close()
            raise errors.CamfleetError(
                f"{self.url} did not greet with Hello; is it a camfleet server?"
            )
        hello = first.hello
        if hello.protocol_version != wire.PROTOCOL_VERSION:
            await ws.close()
            raise errors.CamfleetError(
                f"{self.url} speaks protocol version {hello.protocol_version}; this client "
                f"speaks {wire.PROTOCOL_VERSION}: install the camfleet-client of the "
                f"server's version ({hello.server_version})"
            )
        if hello.sign_in_required:
            await ws.close()
            raise errors.NotSignedIn(
                f"{self.url} has accounts and the client gave no credentials: pass token= "
                "(made by `camfleet token new`) or user= and password="
            )
        self.hello = hello
        self._ws = ws
        self._connected.set()

    async def _run(self) -> None:
        """Reads every message; reopens the connection when it drops."""
        while True:
            ws = self._ws
            try:
                async for data in ws:
                    if isinstance(data, bytes):
                        self._dispatch(data)
            except ConnectionClosed:
                pass
            self._ws = None
            self._connected.clear()
            why = f"the connection to {self.url} closed ({ws.close_code} {ws.close_reason})"
            self._fail_pending(errors.ConnectionLost(why))
            if self._closing or not self._reconnect:
                self._give_up(errors.ConnectionLost(why))
                return
            log.warning("%s; reconnecting", why)
            if not await self._reopen():
                return
            self.reconnects += 1
            self._resubscribe()

    async def _reopen(self) -> bool:
        backoff = FIRST_BACKOFF
        while not self._closing:
            # Jitter, so that clients cut off together do not come back together.
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
            try:
                await self._open_socket()
                return True
            except (errors.NotSignedIn, errors.WrongHost) as e:
                self._give_up(e)
                return False
            except (OSError, EOFError, asyncio.TimeoutError, InvalidHandshake, errors.CamfleetError) as e:
                log.warning("reconnecting to %s failed: %s; next try in %.1f s", self.url, e, backoff)
                backoff = min(backoff * 2, self._max_backoff)
        self._give_up(errors.ConnectionLost("the client was closed"))
        return False

    def _give_up(self, failure: errors.CamfleetError) -> None:
        if self._failure is None:
            self._failure = failure
        self._fail_pending(failure)
        for _, queue in self._status_queues:
            _offer(queue, failure)
        for watchers in self._frame_queues.values():
            for queue, _ in watchers:
                _offer(queue, failure)

    def _fail_pending(self, failure: errors.CamfleetError) -> None:
        for future in list(self._pending.values()) + self._list_waiters:
            if not future.done():
                future.set_exception(failure)
        self._pending.clear()
        self._list_waiters.clear()

    # -- messages -----------------------------------------------------------------------

    def _dispatch(self, data: bytes) -> None:
        try:
            message = wire.ServerMessage.FromString(data)
        except Exception as e:  # a newer server's message this copy cannot read
            log.warning("ignoring a server message that does not decode: %s", e)
            return
        kind = message.WhichOneof("kind")
        if kind == "camera_status":
            status = Status.from_wire(message.camera_status)
            for ids, queue in self._status_queues:
                if ids is None or status.camera_id in ids:
                    _offer(queue, status)
        elif kind == "frame":
            watchers = self._frame_queues.get(message.frame.camera_id, [])
            if watchers:
                frame = Frame.from_wire(message.frame)
                for queue, _ in watchers:
                    _offer(queue, frame)
        elif kind == "camera_list":
            cameras = [Status.from_wire(s) for s in message.camera_list.cameras]
            for future in self._list_waiters:
                if not future.done():
                    future.set_result(cameras)
            self._list_waiters.clear()
        elif kind == "command_result":
            result = message.command_result
            if result.ok:
                self._answer(result.request_id, result=result)
            else:
                self._answer(
                    result.request_id,
                    error=errors.from_wire(result.code, result.error, result.request_id),
                )
        elif kind == "control_list":
            self._answer(message.control_list.request_id, result=message.control_list)
        elif kind == "error":
            e = message.error
            if not self._answer(e.request_id, error=errors.from_wire(e.code, e.message, e.request_id)):
                log.warning("camfleet says: %s", e.message)
        elif kind == "session_stats":
            self.session_stats = message.session_stats

    def _answer(self, request_id: int, *, result=None, error=None) -> bool:
        future = self._pending.pop(request_id, None)
        if future is None or future.done():
            if error is not None and request_id == 0:
                log.warning("camfleet refused a resubscription: %s", error)
            return False
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
        return True

    async def _send(self, field: str, body) -> None:
        if self._failure is not None:
            raise self._failure
        if self._connected is None:
            raise errors.CamfleetError("not connected: use `async with connect(...)` or `await fleet.open()`")
        try:
            await asyncio.wait_for(self._connected.wait(), self._timeout)
        except asyncio.TimeoutError:
            raise errors.ConnectionLost(
                f"not connected to {self.url} for {self._timeout} s; still trying"
            ) from None
        message = wire.ClientMessage(**{field: body})
        ws = self._ws
        if ws is None:
            raise errors.ConnectionLost(f"the connection to {self.url} closed; reconnecting")
        try:
            await ws.send(message.SerializeToString())
        except ConnectionClosed as e:
            raise errors.ConnectionLost(f"the connection to {self.url} closed: {e}") from None

    def _fire(self, field: str, body) -> None:
        """Sends without waiting for the answer (from the reader, or while finishing)."""

        async def send():
            try:
                await self._send(field, body)
            except errors.CamfleetError as e:
                log.debug("not sent (%s): %s", field, e)

        task = asyncio.get_running_loop().create_task(send())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _request(self, field: str, body):
        self._next_id += 1
        body.request_id = self._next_id
        future = asyncio.get_running_loop().create_future()
        self._pending[body.request_id] = future
        try:
            await self._send(field, body)
            return await asyncio.wait_for(future, self._timeout)
        except asyncio.TimeoutError:
            raise errors.Timeout(
                f"{self.url} did not answer `{field}` within {self._timeout} s; try again"
            ) from None
        finally:
            self._pending.pop(body.request_id, None)

    def _resubscribe(self) -> None:
        """Asks again for what the iterators want, on a new connection."""
        if any(ids is None for ids, _ in self._status_queues):
            self._fire("subscribe", wire.Subscribe())
        else:
            ids = set()
            for wanted, _ in self._status_queues:
                ids |= wanted
            if ids:
                self._fire("subscribe", wire.Subscribe(camera_ids=sorted(ids)))
        for camera, watchers in self._frame_queues.items():
            self._fire(
                "subscribe",
                wire.Subscribe(camera_ids=[camera], send_frames=True, max_fps=watchers[0][1]),
            )

    # -- cameras ------------------------------------------------------------------------

    async def cameras(self) -> List[Status]:
        """Every configured camera with its latest status, in configuration order."""
        future = asyncio.get_running_loop().create_future()
        self._list_waiters.append(future)
        await self._send("list_cameras", wire.ListCameras())
        try:
            return await asyncio.wait_for(future, self._timeout)
        except asyncio.TimeoutError:
            raise errors.Timeout(f"{self.url} did not list its cameras within {self._timeout} s") from None

    async def controls(self, camera: str) -> List[Control]:
        """Every control of `camera` with its range and current value."""
        answer = await self._request("get_controls", wire.GetControls(camera_id=camera))
        return [Control.from_wire(c) for c in answer.controls]

    async def set_control(self, camera: str, control: str, value: Union[int, bool, str]) -> Optional[int]:
        """Sets one control and returns the value the camera reads back. `value` is an
        integer, a bool, or a menu item's label. Raises `OutOfRange` (nothing changed),
        `UnknownCamera`, `UnknownControl`, `NotPermitted`, `CameraNotRunning`, ..."""
        if isinstance(value, str):
            value = await self._menu_index(camera, control, value)
        answer = await self._request(
            "set_control",
            wire.SetControl(camera_id=camera, control=control, value=int(value)),
        )
        return answer.value if answer.HasField("value") else None

    async def _menu_index(self, camera: str, control: str, label: str) -> int:
        try:
            return int(label)
        except ValueError:
            pass
        controls = await self.controls(camera)
        for c in controls:
            if c.name == control:
                for index, name in c.menu.items():
                    if name == label:
                        return index
                raise errors.OutOfRange(
                    f"`{label}` is not an item of {camera}'s {control}; "
                    f"its items are: {', '.join(c.menu.values()) or 'none (give a number)'}"
                )
        raise errors.UnknownControl(
            f"{camera} has no control `{control}`; its controls are: "
            f"{', '.join(c.name for c in controls)}"
        )

    async def reset_controls(self, camera: str) -> None:
        """Puts `camera` back to the control values of cameras.yaml."""
        await self._request("reset_controls", wire.ResetControls(camera_id=camera))

    async def statuses(self, *cameras: str) -> AsyncIterator[Status]:
        """Each status as it arrives, of the cameras named or of all of them; the current
        one of each camera first. Raises `UnknownCamera` for an id the server lacks."""
        entry = (frozenset(cameras) or None, asyncio.Queue(maxsize=STATUS_BACKLOG))
        self._status_queues.append(entry)
        try:
            await self._request("subscribe", wire.Subscribe(camera_ids=list(cameras)))
            while True:
                item = await entry[1].get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._status_queues.remove(entry)

    async def frames(self, camera: str, *, max_fps: int = 0) -> AsyncIterator[Frame]:
        """Frames of `camera` as they arrive, at most `max_fps` a second (0: the camera's
        rate). A reader slower than the camera gets the newest frame, and `seq` shows the
        gap."""
        entry = (asyncio.Queue(maxsize=FRAME_BACKLOG), max_fps)
        watchers = self._frame_queues.setdefault(camera, [])
        watchers.append(entry)
        subscribed = False
        try:
            await self._request(
                "subscribe",
                wire.Subscribe(camera_ids=[camera], send_frames=True, max_fps=max_fps),
            )
            subscribed = True
            while True:
                item = await entry[0].get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            watchers.remove(entry)
            if not watchers:
                del self._frame_queues[camera]
                if subscribed and self._failure is None:
                    self._stop_frames(camera)

    def _stop_frames(self, camera: str) -> None:
        self._fire("unsubscribe", wire.Unsubscribe(camera_ids=[camera]))
        # Unsubscribing stops the camera's status too; keep it for those who want it.
        if any(ids is None for ids, _ in self._status_queues):
            self._fire("subscribe", wire.Subscribe())
        elif any(camera in ids for ids, _ in self._status_queues):
            self._fire("subscribe", wire.Subscribe(camera_ids=[camera]))

    async def frame(self, camera: str) -> Frame:
        """The next captured frame of `camera` (NO SIGNAL pictures are skipped)."""
        frames = self.frames(camera)
        try:
            async for frame in frames:
                if not frame.no_signal:
                    return frame
        finally:
            await frames.aclose()
        raise AssertionError("frames() ends only by raising")


def connect(url: str, **options) -> Fleet:
    """A client for the camfleet server at `url` (`http://HOST:PORT`, `https://...`, with
    any path prefix; `user:password@` in it signs in). Options: `token` (from `camfleet
    token new`), `user` and `password`, `ssl` (an `ssl.SSLContext` for a private CA),
    `timeout` (seconds a command waits), `reconnect` (default True), `max_backoff`.

        async with connect(url, token=...) as fleet: ...
        fleet = await connect(url)
    """
    return Fleet(url, **options)
