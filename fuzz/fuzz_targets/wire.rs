//! A client's bytes: as a protobuf `ClientMessage`, and as WebSocket frames cut into the
//! chunks the first byte says, through the frame guard.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    camfleet::fuzzing::client_message(data);
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let size = usize::from(cut).max(1);
    camfleet::fuzzing::frames(1024, rest.chunks(size));
});
