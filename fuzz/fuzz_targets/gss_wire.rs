#![no_main]
//! See `ringnfs_fuzzing::gss_wire`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ringnfs_fuzzing::gss_wire(data));
