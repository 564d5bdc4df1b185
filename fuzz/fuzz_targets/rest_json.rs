#![no_main]
//! See `ringnfs::fuzzing::rest_json`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ringnfs::fuzzing::rest_json(data));
