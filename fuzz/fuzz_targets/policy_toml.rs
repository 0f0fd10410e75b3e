#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ffb_fuzz_entries::policy_toml(data));
