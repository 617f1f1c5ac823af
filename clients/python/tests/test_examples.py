"""The examples run to completion against the real server."""

import os
import pathlib
import subprocess
import sys

import cv2

from camfleet_client.sync import connect

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
#: Long enough for a loaded machine; the examples finish in about a second.
BOUND = 60


def example(url, *args):
    return subprocess.run(
        [sys.executable, str(EXAMPLES / args[0]), *args[1:]],
        env={**os.environ, "CAMFLEET_URL": url, "DISPLAY": ""},
        capture_output=True,
        text=True,
        timeout=BOUND,
    )


def test_brightness_once_prints_every_camera(url):
    done = example(url, "brightness.py", "--once")
    assert done.returncode == 0, done.stderr
    cameras = [line.split()[0] for line in done.stdout.splitlines()]
    assert set(cameras) == {"lobby", "loading-dock", "server-room"}, done.stdout
    assert all("brightness" in line and "fps" in line for line in done.stdout.splitlines())


def test_brightness_sets_from_the_command_line(url):
    done = example(url, "brightness.py", "loading-dock", "77", "--once")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "loading-dock: brightness set to 77", done.stdout
    done = example(url, "brightness.py", "loading-dock", "999", "--once")
    assert done.returncode != 0
    assert "from 0 to 255" in done.stderr and "nothing was changed" in done.stderr, done.stderr
    with connect(url) as fleet:
        fleet.reset_controls("loading-dock")


def test_opencv_view_saves_frames_without_a_display(url, tmp_path):
    done = example(url, "opencv_view.py", "loading-dock", "--save", str(tmp_path), "--count", "3")
    assert done.returncode == 0, done.stderr
    saved = sorted(tmp_path.glob("loading-dock-*.jpg"))
    assert len(saved) == 3, done.stdout
    for path in saved:
        image = cv2.imread(str(path))
        assert image is not None and image.shape[:2] == (360, 640)
