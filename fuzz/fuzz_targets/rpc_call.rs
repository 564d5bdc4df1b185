#![no_main]
//! See `ringnfs_fuzzing::rpc_call`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ringnfs_fuzzing::rpc_call(data));
