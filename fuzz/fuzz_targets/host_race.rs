#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ffb_fuzz_entries::host_race(data));
