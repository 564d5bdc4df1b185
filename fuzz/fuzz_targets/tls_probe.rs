#![no_main]
//! See `ringnfs_fuzzing::tls_probe`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ringnfs_fuzzing::tls_probe(data));
