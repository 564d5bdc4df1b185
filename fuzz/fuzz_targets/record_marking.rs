#![no_main]
//! See `ringnfs_fuzzing::record_marking`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ringnfs_fuzzing::record_marking(data));
