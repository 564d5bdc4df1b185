#![no_main]
//! See `ringnfs::fuzzing::rpc_call`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ringnfs::fuzzing::rpc_call(data));
