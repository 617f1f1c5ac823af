"""Prints each camera's brightness and frame rate as its status arrives; with CAMERA
VALUE, first sets that camera's brightness.

    python brightness.py                      # watch every camera, Ctrl-C to stop
    python brightness.py lobby 120            # set lobby's brightness, then watch
    python brightness.py --once               # each camera once, then exit
    python brightness.py --url https://cams.example:8443 --token cf_...
"""

import argparse
import asyncio
import os
import sys

from camfleet_client import CamfleetError, connect


async def main(args) -> int:
    async with connect(args.url, token=args.token) as fleet:
        if args.camera is not None:
            now = await fleet.set_control(args.camera, "brightness", args.value)
            print(f"{args.camera}: brightness set to {now}")
        waiting = {camera.camera_id for camera in await fleet.cameras()}
        async for status in fleet.statuses():
            brightness = status.controls.get("brightness", "-")
            print(
                f"{status.camera_id:<16} brightness {brightness!s:>4}   "
                f"{status.fps:5.1f} fps   {status.state}",
                flush=True,
            )
            waiting.discard(status.camera_id)
            if args.once and not waiting:
                return 0
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("camera", nargs="?", help="the camera whose brightness to set")
    parser.add_argument("value", nargs="?", type=int, help="the brightness to set")
    parser.add_argument("--url", default=os.environ.get("CAMFLEET_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--token", default=os.environ.get("CAMFLEET_TOKEN"))
    parser.add_argument("--once", action="store_true", help="print each camera once, then exit")
    args = parser.parse_args()
    if (args.camera is None) != (args.value is None):
        parser.error("give both CAMERA and VALUE, or neither")
    try:
        sys.exit(asyncio.run(main(args)))
    except CamfleetError as e:
        sys.exit(f"camfleet: {e}")
    except KeyboardInterrupt:
        pass
