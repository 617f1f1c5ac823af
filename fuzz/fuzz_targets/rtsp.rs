//! A client's bytes on the RTSP port: requests and interleaved packets, one after another,
//! never panic, and no message claims more bytes than were read.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    camfleet::fuzzing::rtsp(data);
});
