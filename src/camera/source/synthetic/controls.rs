//! The synthetic camera's controls: the picture controls a webcam has, and test controls
//! that make it misbehave the way real devices do (stall, vanish, panic, corrupt a frame,
//! refuse writes while busy, hang in a call).

use crate::camera::control::{ControlError, ControlFlags, ControlInfo, ControlType, MenuItem};
use crate::config::Pattern;

pub(super) const ID_BRIGHTNESS: u32 = 1;
pub(super) const ID_CONTRAST: u32 = 2;
pub(super) const ID_FLIP: u32 = 3;
pub(super) const ID_PATTERN: u32 = 4;
/// Controls from here on are test controls; they do not change the picture.
pub(super) const ID_FIRST_TEST: u32 = 0x100;
pub(super) const ID_STALL: u32 = 0x100;
pub(super) const ID_DISCONNECT: u32 = 0x101;
pub(super) const ID_RECONNECT_DELAY: u32 = 0x102;
pub(super) const ID_PANIC: u32 = 0x103;
pub(super) const ID_CORRUPT: u32 = 0x104;
pub(super) const ID_BUSY: u32 = 0x105;
pub(super) const ID_HANG: u32 = 0x106;

/// How long the source stays away after its `disconnect` button, unless set otherwise.
pub(super) const DEFAULT_RECONNECT_DELAY_MS: i64 = 1000;
/// Longest a `hang_ms` press may block the camera's thread.
pub(super) const MAX_HANG_MS: i64 = 10_000;

/// The values of the synthetic camera's controls.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) brightness: i64,
    pub(super) contrast: i64,
    pub(super) flip: bool,
    pub(super) pattern: Pattern,
    /// Deliver no frames, as a stalled device does.
    pub(super) stall: bool,
    /// How long `disconnect` keeps the device away.
    pub(super) reconnect_delay_ms: i64,
    /// Refuse every other control write, as a busy device does.
    pub(super) busy: bool,
}

impl Settings {
    pub(super) fn new(pattern: Pattern) -> Self {
        Settings {
            brightness: 128,
            contrast: 128,
            flip: false,
            pattern,
            stall: false,
            reconnect_delay_ms: DEFAULT_RECONNECT_DELAY_MS,
            busy: false,
        }
    }
}

/// What a control write asks of the device beyond changing a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Nothing more.
    None,
    /// Vanish now, for `reconnect_delay_ms`.
    Disconnect,
    /// Panic on the next frame.
    Panic,
    /// Damage the next frame.
    Corrupt,
    /// Block the next frame this many milliseconds.
    Hang(u64),
}

fn int(id: u32, name: &str, range: (i64, i64), default: i64, value: i64) -> ControlInfo {
    ControlInfo {
        id,
        name: name.to_string(),
        kind: ControlType::Integer,
        min: range.0,
        max: range.1,
        step: 1,
        default,
        value: Some(value),
        menu: vec![],
        flags: ControlFlags::default(),
    }
}

fn of_kind(kind: ControlType, c: ControlInfo) -> ControlInfo {
    ControlInfo { kind, ..c }
}

fn button(id: u32, name: &str) -> ControlInfo {
    of_kind(ControlType::Button, int(id, name, (0, 0), 0, 0))
}

fn boolean(id: u32, name: &str, value: bool) -> ControlInfo {
    of_kind(
        ControlType::Boolean,
        int(id, name, (0, 1), 0, i64::from(value)),
    )
}

fn pattern_index(p: Pattern) -> i64 {
    Pattern::ALL
        .iter()
        .position(|x| *x == p)
        .and_then(|i| i64::try_from(i).ok())
        .unwrap_or(0)
}

/// Every control with its current value; the test controls only when asked for.
pub(super) fn list(
    s: &Settings,
    default_pattern: Pattern,
    test_controls: bool,
) -> Vec<ControlInfo> {
    let last_item = i64::try_from(Pattern::ALL.len()).unwrap_or(1) - 1;
    let mut list = vec![
        int(ID_BRIGHTNESS, "brightness", (0, 255), 128, s.brightness),
        int(ID_CONTRAST, "contrast", (0, 255), 128, s.contrast),
        boolean(ID_FLIP, "horizontal_flip", s.flip),
        ControlInfo {
            menu: Pattern::ALL
                .iter()
                .zip(0..)
                .map(|(p, index)| MenuItem {
                    index,
                    name: p.name().to_string(),
                })
                .collect(),
            ..of_kind(
                ControlType::Menu,
                int(
                    ID_PATTERN,
                    "test_pattern",
                    (0, last_item),
                    pattern_index(default_pattern),
                    pattern_index(s.pattern),
                ),
            )
        },
    ];
    if test_controls {
        list.extend([
            boolean(ID_STALL, "stall", s.stall),
            button(ID_DISCONNECT, "disconnect"),
            int(
                ID_RECONNECT_DELAY,
                "reconnect_delay_ms",
                (0, 60_000),
                DEFAULT_RECONNECT_DELAY_MS,
                s.reconnect_delay_ms,
            ),
            button(ID_PANIC, "panic"),
            button(ID_CORRUPT, "corrupt_frame"),
            boolean(ID_BUSY, "busy", s.busy),
            int(ID_HANG, "hang_ms", (0, MAX_HANG_MS), 0, 0),
        ]);
    }
    list
}

/// Applies a checked value to the settings and says what else the device must do.
pub(super) fn apply(
    s: &mut Settings,
    info: &ControlInfo,
    value: i64,
) -> Result<Action, ControlError> {
    if s.busy && info.id != ID_BUSY {
        return Err(ControlError::Refused {
            name: info.name.clone(),
            value,
            why: "device or resource busy (the synthetic camera's busy control is on)".into(),
        });
    }
    match info.id {
        ID_BRIGHTNESS => s.brightness = value,
        ID_CONTRAST => s.contrast = value,
        ID_FLIP => s.flip = value != 0,
        ID_PATTERN => {
            s.pattern = usize::try_from(value)
                .ok()
                .and_then(|i| Pattern::ALL.get(i).copied())
                .unwrap_or(s.pattern);
        }
        ID_STALL => s.stall = value != 0,
        ID_RECONNECT_DELAY => s.reconnect_delay_ms = value,
        ID_BUSY => s.busy = value != 0,
        ID_DISCONNECT => return Ok(Action::Disconnect),
        ID_PANIC => return Ok(Action::Panic),
        ID_CORRUPT => return Ok(Action::Corrupt),
        ID_HANG => return Ok(Action::Hang(u64::try_from(value).unwrap_or(0))),
        _ => {
            return Err(ControlError::Refused {
                name: info.name.clone(),
                value,
                why: "unknown control id".into(),
            })
        }
    }
    Ok(Action::None)
}
