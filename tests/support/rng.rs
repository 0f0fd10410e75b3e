//! The seeded generator behind the fuzz tests: deterministic, so a failing
//! input is the same on every run.

/// Marsaglia's xorshift64 (13, 7, 17). Small and fast; its one weakness, a
/// zero seed staying zero, is the caller's to avoid.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// The seed named by environment variable `var` (to replay a run), else one
/// from the clock. Printed as `WHO: VAR=SEED` either way, so that a failing
/// run says how to replay it.
pub fn seed_from_env(var: &str, who: &str) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    eprintln!("{who}: {var}={seed}");
    seed
}
