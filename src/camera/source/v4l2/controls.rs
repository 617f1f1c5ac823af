//! Listing, reading and setting V4L2 controls. Types camfleet cannot set are listed as
//! unsupported instead of failing (the `v4l` crate's own listing panics on them).

use std::io;
use std::os::raw::c_int;

use v4l::v4l2;
use v4l::v4l_sys::*;

use super::ioctl::{self, call, zeroed};
use crate::camera::control::{
    normalize_name, ControlError, ControlFlags, ControlInfo, ControlType, MenuItem,
};

const CTRL_CLASS: u32 = v4l2_ctrl_type_V4L2_CTRL_TYPE_CTRL_CLASS;

fn kind(t: u32) -> ControlType {
    #[allow(non_upper_case_globals)]
    match t {
        v4l2_ctrl_type_V4L2_CTRL_TYPE_INTEGER => ControlType::Integer,
        v4l2_ctrl_type_V4L2_CTRL_TYPE_BOOLEAN => ControlType::Boolean,
        v4l2_ctrl_type_V4L2_CTRL_TYPE_MENU => ControlType::Menu,
        v4l2_ctrl_type_V4L2_CTRL_TYPE_BUTTON => ControlType::Button,
        v4l2_ctrl_type_V4L2_CTRL_TYPE_INTEGER64 => ControlType::Integer64,
        v4l2_ctrl_type_V4L2_CTRL_TYPE_BITMASK => ControlType::Bitmask,
        v4l2_ctrl_type_V4L2_CTRL_TYPE_INTEGER_MENU => ControlType::IntegerMenu,
        v4l2_ctrl_type_V4L2_CTRL_TYPE_STRING => ControlType::Unsupported("string".into()),
        v4l2_ctrl_type_V4L2_CTRL_TYPE_U8 => ControlType::Unsupported("u8 array".into()),
        v4l2_ctrl_type_V4L2_CTRL_TYPE_U16 => ControlType::Unsupported("u16 array".into()),
        v4l2_ctrl_type_V4L2_CTRL_TYPE_U32 => ControlType::Unsupported("u32 array".into()),
        v4l2_ctrl_type_V4L2_CTRL_TYPE_AREA => ControlType::Unsupported("area".into()),
        other => ControlType::Unsupported(format!("type {other:#x}")),
    }
}

fn is_wide(kind: &ControlType) -> bool {
    *kind == ControlType::Integer64
}

/// Every control of the device, with menus and current values.
pub fn list(fd: c_int) -> io::Result<Vec<ControlInfo>> {
    let mut out = Vec::new();
    let mut q: v4l2_query_ext_ctrl = zeroed();
    q.id = V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND;
    loop {
        // SAFETY: VIDIOC_QUERY_EXT_CTRL takes a v4l2_query_ext_ctrl.
        match unsafe { call(fd, v4l2::vidioc::VIDIOC_QUERY_EXT_CTRL, &mut q) } {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
            Err(e) => return Err(e),
        }
        if q.type_ != CTRL_CLASS {
            out.push(describe(fd, &q));
        }
        q.id |= V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND;
    }
    Ok(out)
}

fn describe(fd: c_int, q: &v4l2_query_ext_ctrl) -> ControlInfo {
    let kind = kind(q.type_);
    let f = q.flags;
    let flags = ControlFlags {
        disabled: f & V4L2_CTRL_FLAG_DISABLED != 0,
        inactive: f & V4L2_CTRL_FLAG_INACTIVE != 0,
        read_only: f & V4L2_CTRL_FLAG_READ_ONLY != 0,
        write_only: f & V4L2_CTRL_FLAG_WRITE_ONLY != 0,
        grabbed: f & V4L2_CTRL_FLAG_GRABBED != 0,
        volatile: f & V4L2_CTRL_FLAG_VOLATILE != 0,
    };
    let menu = match kind {
        ControlType::Menu | ControlType::IntegerMenu => (q.minimum..=q.maximum)
            .filter_map(|i| {
                let name = ioctl::menu_item(fd, q.id, i as u32, kind == ControlType::IntegerMenu)?;
                Some(MenuItem { index: i, name })
            })
            .collect(),
        _ => Vec::new(),
    };
    let readable =
        !flags.write_only && !matches!(kind, ControlType::Button | ControlType::Unsupported(_));
    let value = if readable {
        ioctl::get_control(fd, q.id, is_wide(&kind)).ok()
    } else {
        None
    };
    ControlInfo {
        id: q.id,
        name: normalize_name(&ioctl::label(q)),
        kind,
        min: q.minimum,
        max: q.maximum,
        step: q.step as i64,
        default: q.default_value,
        value,
        menu,
        flags,
    }
}

/// Sets a control and reads it back; the driver's refusal comes back as the error.
pub fn set(fd: c_int, info: &ControlInfo, value: i64) -> Result<i64, ControlError> {
    let wide = is_wide(&info.kind);
    ioctl::set_control(fd, info.id, value, wide).map_err(|e| ControlError::Refused {
        name: info.name.clone(),
        value,
        why: match e.raw_os_error() {
            Some(libc::EBUSY) => "the control is locked while the camera streams".into(),
            Some(libc::EACCES) => "the control cannot be written".into(),
            _ => e.to_string(),
        },
    })?;
    if info.kind == ControlType::Button || info.flags.write_only {
        return Ok(value);
    }
    ioctl::get_control(fd, info.id, wide).map_err(|e| ControlError::Refused {
        name: info.name.clone(),
        value,
        why: format!("set, but reading it back failed: {e}"),
    })
}

/// The controls with which an H.264 camera is told how often to send a keyframe: the
/// codec's GOP size and the H.264 I-frame period.
const KEYFRAME_CONTROLS: [u32; 2] = [
    V4L2_CID_MPEG_VIDEO_GOP_SIZE,
    V4L2_CID_MPEG_VIDEO_H264_I_PERIOD,
];

/// The keyframe controls among `controls` that can be written, each with the value
/// nearest one keyframe a second (`fps` frames) that the control allows. A viewer who
/// joins mid-stream waits for the next keyframe, so this bounds that wait to a second.
pub fn keyframe_interval(controls: &[ControlInfo], fps: f64) -> Vec<(&ControlInfo, i64)> {
    let frames = if fps.is_finite() && fps >= 1.0 {
        fps.round() as i64
    } else {
        30
    };
    controls
        .iter()
        .filter(|c| KEYFRAME_CONTROLS.contains(&c.id) && c.kind == ControlType::Integer)
        .filter_map(|c| {
            let step = c.step.max(1);
            let aligned = c.min + (frames.clamp(c.min, c.max) - c.min) / step * step;
            c.check(aligned).ok().map(|()| (c, aligned))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(id: u32, min: i64, max: i64, step: i64) -> ControlInfo {
        ControlInfo {
            id,
            ..crate::camera::control::tests::integer(min, max, step)
        }
    }

    #[test]
    fn keyframes_are_asked_for_once_a_second_within_what_the_control_allows() {
        let gop = control(V4L2_CID_MPEG_VIDEO_GOP_SIZE, 0, 300, 1);
        let period = control(V4L2_CID_MPEG_VIDEO_H264_I_PERIOD, 0, 20, 1);
        let stepped = control(V4L2_CID_MPEG_VIDEO_GOP_SIZE, 1, 100, 4);
        let brightness = control(V4L2_CID_BRIGHTNESS, 0, 255, 1);
        let all = [gop.clone(), period.clone(), brightness];
        let set: Vec<(u32, i64)> = keyframe_interval(&all, 29.97)
            .into_iter()
            .map(|(c, v)| (c.id, v))
            .collect();
        assert_eq!(set, [(gop.id, 30), (period.id, 20)]);
        assert_eq!(keyframe_interval(&[stepped], 30.0)[0].1, 29);
        // A camera that does not say its rate gets the common one.
        assert_eq!(keyframe_interval(std::slice::from_ref(&gop), 0.0)[0].1, 30);
    }

    #[test]
    fn read_only_keyframe_controls_are_left_alone() {
        let mut gop = control(V4L2_CID_MPEG_VIDEO_GOP_SIZE, 0, 300, 1);
        gop.flags.read_only = true;
        assert!(keyframe_interval(&[gop], 30.0).is_empty());
    }
}
