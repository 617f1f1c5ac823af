//! A camera's buffer: the JPEG checks find where a complete JPEG ends, or refuse it, and
//! what they hand on is itself a complete JPEG.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(len) = camfleet::camera::jpeg::complete_len(data) {
        assert!(len <= data.len(), "a JPEG cannot end past its buffer");
    }
    if let Some(jpeg) = camfleet::camera::jpeg::normalize(data) {
        assert_eq!(
            camfleet::camera::jpeg::complete_len(&jpeg),
            Some(jpeg.len())
        );
    }
});
