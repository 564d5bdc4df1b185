#![no_main]
//! See `ringnfs::fuzzing::compound`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ringnfs::fuzzing::compound(data));
