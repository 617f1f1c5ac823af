//! Memory-mapped capture with a bounded wait.
//!
//! Written on the `v4l` crate's ioctls rather than its `Stream`, whose `next()` re-queues
//! the previous buffer before it waits (so a timed-out wait corrupts the queue) and whose
//! `Drop` panics when stopping fails with anything but ENODEV. Here a buffer is handed back
//! to the driver only when the next frame is asked for, a wait never blocks longer than
//! asked, and dropping ignores the errors of a device that is already gone.

use std::io;
use std::os::raw::c_int;
use std::time::{Duration, SystemTime};

use v4l::v4l2;
use v4l::v4l_sys::*;

use super::ioctl::{self, call, zeroed};
use crate::camera::source::SourceError;

/// Buffers shared with the driver.
pub const BUFFERS: u32 = 4;

struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

/// A streaming capture queue on an open device node.
pub struct MmapStream {
    fd: c_int,
    maps: Vec<Mapping>,
    /// The buffer lent to the caller by the last `next`, to be given back first.
    lent: Option<u32>,
    last_sequence: Option<u32>,
    /// Damaged frames given back since the last good one.
    damaged: u64,
}

// SAFETY: the mappings are owned by this stream alone and only touched through `&mut self`.
unsafe impl Send for MmapStream {}

/// One dequeued frame, borrowed from the stream until the next call.
pub struct Dequeued<'a> {
    pub data: &'a [u8],
    pub captured_at: SystemTime,
    pub lost_before: u64,
}

fn buffer(index: u32) -> v4l2_buffer {
    let mut b: v4l2_buffer = zeroed();
    b.type_ = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
    b.memory = v4l2_memory_V4L2_MEMORY_MMAP;
    b.index = index;
    b
}

/// Maps an error of the device to what the camera should say.
pub fn device_error(what: &str, e: &io::Error) -> SourceError {
    match e.raw_os_error() {
        Some(libc::ENODEV | libc::ENXIO | libc::EIO) => {
            SourceError::Unplugged(format!("{what}: {e}"))
        }
        Some(libc::EBUSY) => {
            SourceError::Busy(format!("{what}: {e}; another program is using the camera"))
        }
        Some(libc::ENOSPC) => SourceError::Bandwidth(format!(
            "{what}: the USB bus has no bandwidth left for this stream; use MJPEG \
             (pixel_format: MJPG), a smaller size or a lower fps, or move the camera to \
             another USB controller"
        )),
        _ => SourceError::Failed(format!(
            "{what}: {e}; camfleet keeps retrying, and the kernel log (`dmesg`) may say why \
             the driver failed"
        )),
    }
}

impl MmapStream {
    /// Allocates and maps buffers, queues them and starts streaming.
    pub fn start(fd: c_int) -> Result<MmapStream, SourceError> {
        let mut req: v4l2_requestbuffers = zeroed();
        req.count = BUFFERS;
        req.type_ = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
        req.memory = v4l2_memory_V4L2_MEMORY_MMAP;
        // SAFETY: VIDIOC_REQBUFS takes a v4l2_requestbuffers.
        unsafe { call(fd, v4l2::vidioc::VIDIOC_REQBUFS, &mut req) }
            .map_err(|e| device_error("requesting buffers", &e))?;
        let mut stream = MmapStream {
            fd,
            maps: Vec::new(),
            lent: None,
            last_sequence: None,
            damaged: 0,
        };
        for index in 0..req.count {
            let mut b = buffer(index);
            // SAFETY: VIDIOC_QUERYBUF takes a v4l2_buffer.
            unsafe { call(fd, v4l2::vidioc::VIDIOC_QUERYBUF, &mut b) }
                .map_err(|e| device_error("querying a buffer", &e))?;
            // SAFETY: maps the driver's buffer at the offset it gave; checked below. The
            // 64-bit offset call takes the driver's 32-bit unsigned offset whole on 32-bit
            // ARM too, where `off_t` is a signed 32-bit number.
            let ptr = unsafe {
                libc::mmap64(
                    std::ptr::null_mut(),
                    b.length as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd,
                    libc::off64_t::from(b.m.offset),
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(device_error(
                    "mapping a buffer",
                    &io::Error::last_os_error(),
                ));
            }
            stream.maps.push(Mapping {
                ptr,
                len: b.length as usize,
            });
            stream.queue(index)?;
        }
        let mut kind = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
        // SAFETY: VIDIOC_STREAMON takes the buffer type.
        unsafe { call(fd, v4l2::vidioc::VIDIOC_STREAMON, &mut kind) }
            .map_err(|e| device_error("starting the stream", &e))?;
        Ok(stream)
    }

    fn queue(&mut self, index: u32) -> Result<(), SourceError> {
        let mut b = buffer(index);
        // SAFETY: VIDIOC_QBUF takes a v4l2_buffer.
        unsafe { call(self.fd, v4l2::vidioc::VIDIOC_QBUF, &mut b) }
            .map_err(|e| device_error("queueing a buffer", &e))
    }

    /// Takes a filled buffer from the driver, if one is ready (the device is non-blocking).
    fn dequeue(&mut self) -> Result<Option<v4l2_buffer>, SourceError> {
        let mut b = buffer(0);
        // SAFETY: VIDIOC_DQBUF takes a v4l2_buffer.
        match unsafe { call(self.fd, v4l2::vidioc::VIDIOC_DQBUF, &mut b) } {
            Ok(()) => Ok(Some(b)),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(None),
            Err(e) => Err(device_error("taking a frame", &e)),
        }
    }

    /// Waits at most `wait` for a frame, and gives the newest one the driver holds.
    pub fn next(&mut self, wait: Duration) -> Result<Option<Dequeued<'_>>, SourceError> {
        if let Some(index) = self.lent.take() {
            self.queue(index)?;
        }
        let events = ioctl::poll(self.fd, wait.as_millis().min(60_000) as c_int)
            .map_err(|e| device_error("waiting for a frame", &e))?;
        if events & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            return Err(SourceError::Unplugged(
                "the device reported an error while streaming (POLLERR); it was probably \
                 unplugged"
                    .into(),
            ));
        }
        if events & libc::POLLIN == 0 {
            return Ok(None);
        }
        let Some(mut b) = self.dequeue()? else {
            return Ok(None);
        };
        self.lent = Some(b.index);
        // The newest frame wins: frames that waited in the driver while the last one was
        // being encoded or sent are older than any viewer wants. They go back to the
        // driver, and the sequence gap below counts them as skipped.
        while let Some(newer) = self.dequeue()? {
            self.lent = Some(newer.index);
            self.queue(b.index)?;
            b = newer;
        }
        let lost_before = match self.last_sequence {
            Some(last) => u64::from(b.sequence.wrapping_sub(last).saturating_sub(1)),
            None => 0,
        };
        self.last_sequence = Some(b.sequence);
        let map = self.maps.get(b.index as usize).ok_or_else(|| {
            SourceError::Failed(format!(
                "the driver returned buffer {}, which camfleet never queued; camfleet \
                 reopens the device",
                b.index
            ))
        })?;
        let used = (b.bytesused as usize).min(map.len);
        // SAFETY: the buffer is mapped for `len` bytes and is ours until it is queued
        // again, which happens only at the next call, after this borrow ends.
        let data = unsafe { std::slice::from_raw_parts(map.ptr as *const u8, used) };
        if b.flags & V4L2_BUF_FLAG_ERROR != 0 {
            // A damaged frame: it goes back at the next call and counts as lost.
            self.damaged += lost_before + 1;
            return Ok(None);
        }
        let lost_before = lost_before + std::mem::take(&mut self.damaged);
        Ok(Some(Dequeued {
            data,
            captured_at: capture_time(&b.timestamp),
            lost_before,
        }))
    }
}

/// Turns a buffer's monotonic timestamp into wall-clock time.
// time_t and suseconds_t are i64 on the targets built here, but not on every target.
#[allow(clippy::useless_conversion)]
fn capture_time(ts: &timeval) -> SystemTime {
    let mut now: libc::timespec = zeroed();
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut now) };
    let now_us = i64::from(now.tv_sec) * 1_000_000 + i64::from(now.tv_nsec) / 1000;
    let then_us = i64::from(ts.tv_sec) * 1_000_000 + i64::from(ts.tv_usec);
    let age = now_us - then_us;
    if (0..2_000_000).contains(&age) {
        SystemTime::now() - Duration::from_micros(age as u64)
    } else {
        SystemTime::now()
    }
}

impl Drop for MmapStream {
    fn drop(&mut self) {
        // Errors are expected here when the device is gone; there is nothing to do about
        // them, and the file descriptor is closed right after.
        let mut kind = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
        // SAFETY: VIDIOC_STREAMOFF takes the buffer type.
        let _ = unsafe { call(self.fd, v4l2::vidioc::VIDIOC_STREAMOFF, &mut kind) };
        for m in self.maps.drain(..) {
            // SAFETY: unmaps exactly what `start` mapped.
            unsafe { libc::munmap(m.ptr, m.len) };
        }
        let mut req: v4l2_requestbuffers = zeroed();
        req.type_ = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
        req.memory = v4l2_memory_V4L2_MEMORY_MMAP;
        // SAFETY: VIDIOC_REQBUFS with count 0 frees the buffers.
        let _ = unsafe { call(self.fd, v4l2::vidioc::VIDIOC_REQBUFS, &mut req) };
    }
}
