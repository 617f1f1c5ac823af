"""The asyncio and blocking clients against a real camfleet server on the repository's
cameras.yaml (lobby 640x480, loading-dock 640x360, server-room 320x240; all synthetic)."""

import asyncio
import io

import pytest
from PIL import Image

from camfleet_client import (
    NotPermitted,
    NotSignedIn,
    OutOfRange,
    UnknownCamera,
    UnknownControl,
    connect,
    sync,
)
from camfleet_client.fleet import DEFAULT_TIMEOUT

DEFAULT_FLEET = {"lobby", "loading-dock", "server-room"}
#: The server sends each streaming camera's status at least this often, in seconds.
STATUS_INTERVAL = 1.0
#: How long anything that should come with the next statuses may take on a loaded machine.
BOUND = DEFAULT_TIMEOUT + 5 * STATUS_INTERVAL
#: The server drops a client it has not heard from for this long (src/http/ws/mod.rs).
SERVER_CLIENT_TIMEOUT = 15.0


async def first_status_where(fleet, predicate, *cameras):
    async def wait():
        async for status in fleet.statuses(*cameras):
            if predicate(status):
                return status

    return await asyncio.wait_for(wait(), BOUND)


def test_status_of_every_camera_arrives(url, run):
    async def check():
        async with connect(url) as fleet:
            assert fleet.hello.protocol_version == 1
            listed = await fleet.cameras()
            assert [c.camera_id for c in listed] == ["lobby", "loading-dock", "server-room"]
            seen = {}

            async def collect():
                async for status in fleet.statuses():
                    seen[status.camera_id] = status
                    if set(seen) == DEFAULT_FLEET:
                        return

            await asyncio.wait_for(collect(), BOUND)
            assert all(
                s.state in ("opening", "streaming", "reconnecting", "idle", "stopped")
                for s in seen.values()
            )
            assert seen["lobby"].name == "Lobby"
            assert "brightness" in seen["lobby"].controls
            streaming = await first_status_where(
                fleet, lambda s: s.state == "streaming" and s.fps > 0, "lobby"
            )
            assert (streaming.width, streaming.height) == (640, 480)

    run(check())


def test_brightness_changes_and_is_read_back(url, run):
    async def check():
        async with connect(url) as fleet:
            try:
                assert await fleet.set_control("lobby", "brightness", 91) == 91
                control = next(c for c in await fleet.controls("lobby") if c.name == "brightness")
                assert (control.value, control.min, control.max) == (91, 0, 255)
                assert control.changed_by == "anyone"
                # Another client hears of it in the camera's status.
                async with connect(url) as other:
                    await first_status_where(
                        other, lambda s: s.controls.get("brightness") == 91, "lobby"
                    )
                # A menu item by its label.
                assert await fleet.set_control("lobby", "test_pattern", "checkers") == 2
            finally:
                await fleet.reset_controls("lobby")
            control = next(c for c in await fleet.controls("lobby") if c.name == "brightness")
            assert control.value == 140, "cameras.yaml's brightness after a reset"

    run(check())


def test_bad_commands_raise_typed_errors_and_change_nothing(url, run):
    async def check():
        async with connect(url) as fleet:
            before = next(c for c in await fleet.controls("lobby") if c.name == "brightness")
            with pytest.raises(OutOfRange) as refused:
                await fleet.set_control("lobby", "brightness", 300)
            assert refused.value.code == "out_of_range"
            assert "255" in str(refused.value), refused.value
            after = next(c for c in await fleet.controls("lobby") if c.name == "brightness")
            assert after.value == before.value

            with pytest.raises(UnknownCamera) as refused:
                await fleet.set_control("lobbby", "brightness", 10)
            assert "lobby" in str(refused.value), "the error lists the cameras"
            with pytest.raises(UnknownControl) as refused:
                await fleet.set_control("lobby", "brightnes", 10)
            assert "did you mean `brightness`" in str(refused.value), refused.value
            with pytest.raises(UnknownCamera):
                async for _ in fleet.statuses("nowhere"):
                    pass
            # The connection is still good.
            assert len(await fleet.cameras()) == 3

    run(check())


def test_frames_are_jpegs_of_the_camera_size(url, run):
    async def check():
        async with connect(url) as fleet:
            sizes = {"lobby": (640, 480), "loading-dock": (640, 360), "server-room": (320, 240)}
            for camera, size in sizes.items():
                frame = await asyncio.wait_for(fleet.frame(camera), BOUND)
                assert frame.camera_id == camera and not frame.no_signal
                image = Image.open(io.BytesIO(frame.jpeg))
                assert image.format == "JPEG" and image.size == size
                image.load()

            async def three():
                seqs = []
                async for frame in fleet.frames("lobby", max_fps=5):
                    seqs.append(frame.seq)
                    if len(seqs) == 3:
                        return seqs

            seqs = await asyncio.wait_for(three(), BOUND)
            assert seqs == sorted(set(seqs)), seqs

    run(check())


def test_a_client_that_does_not_read_is_kept(url, run):
    """The client's own reader answers the server's pings while the caller does other
    things for longer than the server's silence timeout."""

    async def check():
        async with connect(url) as fleet:
            frames = fleet.frames("lobby")
            await asyncio.wait_for(frames.__anext__(), BOUND)
            await asyncio.sleep(SERVER_CLIENT_TIMEOUT + 5)
            frame = await asyncio.wait_for(frames.__anext__(), BOUND)
            assert frame.camera_id == "lobby"
            await frames.aclose()
            assert await fleet.set_control("lobby", "brightness", 140) == 140
            assert fleet.reconnects == 0

    run(check())


class CuttingProxy:
    """A TCP proxy to the server that can cut every connection, and refuse the next
    `refuse` connections, as a network that fails would."""

    def __init__(self, target_url: str):
        host_port = target_url.split("://", 1)[1].split("/", 1)[0]
        self.target_host, port = host_port.rsplit(":", 1)
        self.target_port = int(port)
        self.links = []
        self.refuse = 0
        self.attempts = 0

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _link(self, reader, writer):
        self.attempts += 1
        if self.refuse > 0:
            self.refuse -= 1
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        self.links.append((writer, up_writer))

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self, then_refuse: int) -> None:
        self.refuse = then_refuse
        for down, up in self.links:
            down.transport.abort()
            up.transport.abort()
        self.links.clear()

    async def stop(self):
        self.server.close()
        await self.server.wait_closed()


def test_it_reconnects_after_the_network_fails_and_carries_on(url, run):
    async def check():
        proxy = CuttingProxy(url)
        through = await proxy.start()
        try:
            async with connect(through) as fleet:
                statuses = fleet.statuses("lobby")
                await asyncio.wait_for(statuses.__anext__(), BOUND)
                attempts = proxy.attempts
                proxy.cut(then_refuse=3)
                # The same iterator carries on once the client is back: three refused
                # attempts, then the fourth gets through.
                while fleet.reconnects == 0:
                    await asyncio.wait_for(statuses.__anext__(), BOUND * 4)
                status = await asyncio.wait_for(statuses.__anext__(), BOUND)
                assert status.camera_id == "lobby"
                assert proxy.attempts == attempts + 4
                assert await fleet.set_control("lobby", "brightness", 140) == 140
                await statuses.aclose()
        finally:
            await proxy.stop()

    run(check())


def test_the_blocking_client_for_scripts(url):
    with sync.connect(url) as fleet:
        assert {c.camera_id for c in fleet.cameras()} == DEFAULT_FLEET
        assert fleet.set_control("server-room", "brightness", 100) == 100
        for status in fleet.statuses("server-room"):
            if status.controls.get("brightness") == 100:
                break
        frame = next(iter(fleet.frames("server-room")))
        assert Image.open(io.BytesIO(frame.jpeg)).size == (320, 240)
        fleet.reset_controls("server-room")


def test_credentials_as_other_clients_give_them(accounts_url, viewer_token, run):
    async def check():
        with pytest.raises(NotSignedIn) as refused:
            await connect(accounts_url).open()
        assert "token" in str(refused.value)
        async with connect(accounts_url, token=viewer_token) as fleet:
            assert fleet.hello.role == "viewer"
            assert [c.camera_id for c in await fleet.cameras()] == ["a"]
            with pytest.raises(NotPermitted):
                await fleet.set_control("a", "brightness", 10)
        host = accounts_url.split("://", 1)[1]
        async with connect(f"http://ada:ada-password@{host}") as fleet:
            assert fleet.hello.account == "ada"
            assert await fleet.set_control("b", "brightness", 10) == 10
        async with connect(accounts_url, user="ada", password="ada-password") as fleet:
            assert fleet.hello.role == "admin"
        with pytest.raises(NotSignedIn):
            await connect(accounts_url, user="ada", password="wrong").open()

    run(check())
