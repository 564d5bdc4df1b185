#![no_main]
//! See `ringnfs::fuzzing::pipeline`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ringnfs::fuzzing::pipeline(data));
