#![no_main]
//! See `ringnfs_fuzzing::pipeline`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ringnfs_fuzzing::pipeline(data));
