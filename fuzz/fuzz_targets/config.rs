//! `cameras.yaml` as a user may write it: any text parses to a fleet or to located errors.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = camfleet::config::Config::parse(text, std::path::Path::new("fuzz.yaml")) {
        assert!(
            !errors.0.is_empty(),
            "a refused file names at least one problem"
        );
        let _ = errors.to_string();
    }
});
