//! A camera's H.264 buffer: splitting it into NAL units, classifying it, and reading every
//! sequence parameter set in it never panic, and the units are pieces of the buffer that
//! hold no start code.
#![no_main]

use camfleet::camera::h264::{nal, nal_type, nal_units, AccessUnit, Sps};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = AccessUnit::of(data);
    let range = data.as_ptr_range();
    for unit in nal_units(data) {
        assert!(!unit.is_empty());
        assert!(range.contains(&unit.as_ptr()), "a NAL unit outside the buffer");
        assert!(
            !unit.windows(3).any(|w| w == [0, 0, 1]),
            "a NAL unit holding a start code"
        );
        if nal_type(unit) == Some(nal::SPS) {
            if let Ok(sps) = Sps::parse(unit) {
                assert!(sps.width > 0 && sps.height > 0);
                assert_eq!(sps.codec_string().len(), 11);
            }
        }
    }
});
