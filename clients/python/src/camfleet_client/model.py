"""What the server tells about cameras, as plain Python values."""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from . import wire


@dataclass(frozen=True)
class ControlProblem:
    """A control value from cameras.yaml that is not in effect, and why."""

    name: str
    desired: int
    actual: Optional[int]
    message: str


@dataclass(frozen=True)
class Status:
    """One camera's state and counters, as the server last reported them."""

    camera_id: str
    name: str
    #: "opening", "streaming", "reconnecting", "stopped" or "idle".
    state: str
    #: Why the camera is not streaming; empty while it streams.
    reason: str
    #: Frames per second over the last second.
    fps: float
    frames_captured: int
    #: Frames skipped by the device or the capture loop since the server started.
    frames_dropped: int
    #: The current value of every readable control, by name.
    controls: Dict[str, int]
    width: int
    height: int
    #: FourCC such as "MJPG" or "YUYV"; empty until the device is open.
    pixel_format: str
    viewers: int
    reconnects: int
    control_problems: List[ControlProblem] = field(default_factory=list)
    #: The message as it came, for fields not copied above.
    raw: object = field(default=None, repr=False, compare=False)

    @classmethod
    def from_wire(cls, s) -> "Status":
        return cls(
            camera_id=s.camera_id,
            name=s.name,
            state=wire.enum_name("CameraState", s.state, "CAMERA_STATE_"),
            reason=s.reason,
            fps=s.fps,
            frames_captured=s.frames_captured,
            frames_dropped=s.frames_dropped,
            controls={c.name: c.value for c in s.controls},
            width=s.width,
            height=s.height,
            pixel_format=s.pixel_format,
            viewers=s.viewers,
            reconnects=s.reconnects,
            control_problems=[
                ControlProblem(
                    p.name,
                    p.desired,
                    p.actual if p.HasField("actual") else None,
                    p.message,
                )
                for p in s.control_problems
            ],
            raw=s,
        )


@dataclass(frozen=True)
class Control:
    """One control of a camera, with its range and current value."""

    name: str
    #: "integer", "boolean", "menu", "button", "integer64", "integer_menu", "bitmask" or
    #: "unsupported".
    type: str
    min: int
    max: int
    step: int
    default: int
    #: None when the control cannot be read.
    value: Optional[int]
    #: For menus: item index to label.
    menu: Dict[int, str]
    read_only: bool
    inactive: bool
    #: Who changed it while running (kept across restarts); empty when it has the value
    #: from cameras.yaml.
    changed_by: str
    raw: object = field(default=None, repr=False, compare=False)

    @classmethod
    def from_wire(cls, c) -> "Control":
        return cls(
            name=c.name,
            type=wire.enum_name("ControlType", c.type, "CONTROL_TYPE_"),
            min=c.min,
            max=c.max,
            step=c.step,
            default=c.default,
            value=c.value if c.HasField("value") else None,
            menu={m.index: m.name for m in c.menu_items},
            read_only=c.read_only,
            inactive=c.inactive,
            changed_by=c.changed_by,
            raw=c,
        )


@dataclass(frozen=True)
class Frame:
    """One picture of a camera."""

    camera_id: str
    #: The camera's frame number; a gap means frames were skipped for this client.
    seq: int
    #: When the frame was captured, in seconds since the Unix epoch.
    captured_at: float
    #: A complete JPEG file.
    jpeg: bytes = field(repr=False)
    #: Empty for a captured picture; when set, the camera has failed, `jpeg` is its NO
    #: SIGNAL picture and this is the reason.
    no_signal: str = ""

    @classmethod
    def from_wire(cls, f) -> "Frame":
        return cls(
            camera_id=f.camera_id,
            seq=f.seq,
            captured_at=f.capture_timestamp / 1e6,
            jpeg=bytes(f.jpeg),
            no_signal=f.no_signal,
        )
