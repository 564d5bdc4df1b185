#![no_main]
//! See `ringnfs_fuzzing::rest_json`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ringnfs_fuzzing::rest_json(data));
