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
