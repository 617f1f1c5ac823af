//! Thin, checked wrappers over the V4L2 ioctls camfleet issues itself, on top of the `v4l`
//! crate's `ioctl` and generated types.

use std::io;
use std::os::raw::{c_int, c_void};

use v4l::v4l2;
use v4l::v4l_sys::*;

/// Issues one ioctl with `arg` as its argument.
///
/// # Safety
/// `arg` must be the type the kernel expects for `request`.
pub unsafe fn call<T>(fd: c_int, request: v4l2::vidioc::_IOC_TYPE, arg: &mut T) -> io::Result<()> {
    v4l2::ioctl(fd, request, std::ptr::from_mut(arg).cast::<c_void>())
}

/// The plain-old-data structs of the V4L2 API (and `timespec`), for which all-zero bytes
/// are a valid value.
///
/// # Safety
/// Implement only for C structs of integers, arrays, unions and raw pointers, where every
/// all-zero bit pattern is a valid value.
pub unsafe trait Zeroable: Sized {}

// SAFETY: each is a bindgen-generated C struct of integers, arrays, unions and raw
// pointers; the kernel's API itself says to zero them before filling in fields.
unsafe impl Zeroable for v4l2_capability {}
// SAFETY: as above.
unsafe impl Zeroable for v4l2_querymenu {}
// SAFETY: as above.
unsafe impl Zeroable for v4l2_ext_control {}
// SAFETY: as above.
unsafe impl Zeroable for v4l2_ext_controls {}
// SAFETY: as above.
unsafe impl Zeroable for v4l2_query_ext_ctrl {}
// SAFETY: as above.
unsafe impl Zeroable for v4l2_buffer {}
// SAFETY: as above.
unsafe impl Zeroable for v4l2_requestbuffers {}
// SAFETY: two integers.
unsafe impl Zeroable for libc::timespec {}

/// A zeroed V4L2 struct, as the API expects before filling in the fields it needs.
pub fn zeroed<T: Zeroable>() -> T {
    // SAFETY: `Zeroable` promises that all-zero bytes are a valid `T`.
    unsafe { std::mem::zeroed() }
}

/// Driver, card and bus names and the capabilities of this node (not of the whole device).
pub struct NodeCaps {
    pub driver: String,
    pub card: String,
    pub bus_info: String,
    pub caps: u32,
}

fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).trim().to_string()
}

/// `VIDIOC_QUERYCAP`.
pub fn querycap(fd: c_int) -> io::Result<NodeCaps> {
    let mut cap: v4l2_capability = zeroed();
    // SAFETY: VIDIOC_QUERYCAP takes a v4l2_capability.
    unsafe { call(fd, v4l2::vidioc::VIDIOC_QUERYCAP, &mut cap)? };
    let caps = if cap.capabilities & V4L2_CAP_DEVICE_CAPS != 0 {
        cap.device_caps
    } else {
        cap.capabilities
    };
    Ok(NodeCaps {
        driver: text(&cap.driver),
        card: text(&cap.card),
        bus_info: text(&cap.bus_info),
        caps,
    })
}

/// Whether this node captures video by streaming.
pub fn is_capture(caps: &NodeCaps) -> bool {
    caps.caps & V4L2_CAP_VIDEO_CAPTURE != 0 && caps.caps & V4L2_CAP_STREAMING != 0
}

/// The control's label and fields from `VIDIOC_QUERY_EXT_CTRL`.
pub fn label(q: &v4l2_query_ext_ctrl) -> String {
    // SAFETY: `name` is a fixed-size char array inside the struct.
    let bytes: &[u8] = unsafe { std::slice::from_raw_parts(q.name.as_ptr().cast(), q.name.len()) };
    text(bytes)
}

/// A menu item's label, or its integer for integer menus.
pub fn menu_item(fd: c_int, id: u32, index: u32, integer: bool) -> Option<String> {
    let mut m: v4l2_querymenu = zeroed();
    m.id = id;
    m.index = index;
    // SAFETY: VIDIOC_QUERYMENU takes a v4l2_querymenu.
    unsafe { call(fd, v4l2::vidioc::VIDIOC_QUERYMENU, &mut m).ok()? };
    // SAFETY: the union holds a name for menus and a value for integer menus.
    Some(unsafe {
        if integer {
            let value = m.__bindgen_anon_1.value;
            value.to_string()
        } else {
            let name = &m.__bindgen_anon_1.name;
            text(std::slice::from_raw_parts(name.as_ptr().cast(), name.len()))
        }
    })
}

/// Reads one control's current value.
pub fn get_control(fd: c_int, id: u32, wide: bool) -> io::Result<i64> {
    let mut c: v4l2_ext_control = zeroed();
    c.id = id;
    let mut cs: v4l2_ext_controls = zeroed();
    cs.count = 1;
    cs.controls = &raw mut c;
    // SAFETY: VIDIOC_G_EXT_CTRLS takes a v4l2_ext_controls whose `controls` points at
    // `count` live v4l2_ext_control structs; `c` outlives the call.
    unsafe { call(fd, v4l2::vidioc::VIDIOC_G_EXT_CTRLS, &mut cs)? };
    // SAFETY: the union holds value64 for 64-bit controls and value otherwise.
    Ok(unsafe {
        if wide {
            c.__bindgen_anon_1.value64
        } else {
            i64::from(c.__bindgen_anon_1.value)
        }
    })
}

/// Sets one control.
pub fn set_control(fd: c_int, id: u32, value: i64, wide: bool) -> io::Result<()> {
    let mut c: v4l2_ext_control = zeroed();
    c.id = id;
    if wide {
        c.__bindgen_anon_1.value64 = value;
    } else {
        c.__bindgen_anon_1.value = value as i32;
    }
    let mut cs: v4l2_ext_controls = zeroed();
    cs.count = 1;
    cs.controls = &raw mut c;
    // SAFETY: as in `get_control`.
    unsafe { call(fd, v4l2::vidioc::VIDIOC_S_EXT_CTRLS, &mut cs) }
}

/// Waits up to `timeout_ms` for the node to have a frame. Returns the poll events.
pub fn poll(fd: c_int, timeout_ms: c_int) -> io::Result<i16> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN | libc::POLLPRI,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    match unsafe { libc::poll(&raw mut p, 1, timeout_ms) } {
        -1 => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            }
        }
        0 => Ok(0),
        _ => Ok(p.revents),
    }
}
