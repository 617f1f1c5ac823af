"""Shows a camera's frames in an OpenCV window, or saves them as JPEG files where there is
no display (or with --save).

    python opencv_view.py lobby                   # a window; q or Esc closes it
    python opencv_view.py lobby --save frames/ --count 10
"""

import argparse
import os
import pathlib
import sys

import cv2
import numpy as np

from camfleet_client import CamfleetError
from camfleet_client.sync import connect


def main(args) -> int:
    show = args.save is None and bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    save = pathlib.Path(args.save or "frames")
    if not show:
        save.mkdir(parents=True, exist_ok=True)
        print(f"no display: saving frames to {save}/", file=sys.stderr)
    seen = 0
    with connect(args.url, token=args.token) as fleet:
        for frame in fleet.frames(args.camera, max_fps=args.fps):
            image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                print(f"frame {frame.seq} does not decode", file=sys.stderr)
                return 1
            if show:
                cv2.imshow(f"camfleet: {args.camera}", image)
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
            else:
                path = save / f"{args.camera}-{frame.seq:08d}.jpg"
                cv2.imwrite(str(path), image)
                height, width = image.shape[:2]
                print(f"{path} {width}x{height}", flush=True)
            seen += 1
            if args.count and seen >= args.count:
                break
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("camera")
    parser.add_argument("--url", default=os.environ.get("CAMFLEET_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--token", default=os.environ.get("CAMFLEET_TOKEN"))
    parser.add_argument("--fps", type=int, default=0, help="at most this many frames a second")
    parser.add_argument("--save", metavar="DIR", help="save frames here instead of showing them")
    parser.add_argument("--count", type=int, default=0, help="stop after this many frames")
    args = parser.parse_args()
    try:
        sys.exit(main(args))
    except CamfleetError as e:
        sys.exit(f"camfleet: {e}")
    except KeyboardInterrupt:
        pass
