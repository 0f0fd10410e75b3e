//! How much of everything one run measures, and the sizes it measures at.

use std::time::Duration;

pub const KIB: usize = 1 << 10;
pub const MIB: usize = 1 << 20;
/// Calls per timed block for the block-timed (timer-free) figures.
pub const BLOCK: usize = 1000;
/// Calls in one batch, and in the one-at-a-time run it is compared with.
pub const BATCH: usize = 1000;
/// Payload sizes of the sweep.
pub const SWEEP: [usize; 6] = [64, KIB, 16 * KIB, 256 * KIB, MIB, 4 * MIB];
/// The largest payload a baseline carries.
pub const MAX_PAYLOAD: usize = 8 * MIB;
/// The zero-copy buffer, and the arena of the bridge that holds it.
pub const SHARED_LEN: usize = 16 * MIB;
pub const SHARED_ARENA: usize = 48 * MIB;
/// The arena of the main bridge (the sweep's 4 MiB fits with room to spare).
pub const MAIN_ARENA: usize = 8 * MIB;
/// Each mechanism's turn under load.
pub const LOAD_WINDOW: Duration = Duration::from_millis(10);
/// The idle gap before each "first call after idle" sample.
pub const IDLE_GAP: Duration = Duration::from_millis(12);

/// How much of everything to measure.
pub struct Plan {
    pub quick: bool,
    /// Per-call samples.
    pub calls: usize,
    /// Untimed calls before each hot per-call measurement.
    pub warm: usize,
    /// Blocks of [`BLOCK`] calls.
    pub blocks: usize,
    /// Interleaved rounds the hot and sweep measurements are spread over.
    pub rounds: usize,
    pub warm_spawns: usize,
    /// Sweep samples per size: bytes budget / size, clamped to [min, max].
    pub sweep_bytes: usize,
    pub sweep_min: usize,
    pub sweep_max: usize,
    pub zero_copy: usize,
    pub batches: usize,
    pub busy_cpu: Duration,
    pub idle_cpu: Duration,
    pub wake_samples: usize,
    pub bursts: usize,
    pub load_budget: Duration,
}

impl Plan {
    pub fn new(calls: usize, quick: bool) -> Plan {
        let n = if quick { calls / 10 } else { calls }.max(1000);
        Plan {
            quick,
            calls: n,
            warm: (n / 10).clamp(100, 10_000),
            blocks: (n / BLOCK).clamp(20, 200),
            rounds: if quick { 3 } else { 5 },
            warm_spawns: if quick { 10 } else { 50 },
            sweep_bytes: if quick { 32 * MIB } else { 256 * MIB },
            sweep_min: if quick { 15 } else { 50 },
            sweep_max: (n / 10).max(1000),
            zero_copy: if quick { 30 } else { 200 },
            batches: if quick { 20 } else { 100 },
            busy_cpu: Duration::from_millis(500),
            idle_cpu: Duration::from_secs(if quick { 1 } else { 2 }),
            wake_samples: if quick { 50 } else { 200 },
            bursts: if quick { 10 } else { 30 },
            load_budget: Duration::from_secs(if quick { 3 } else { 6 }),
        }
    }

    pub fn sweep_samples(&self, size: usize) -> usize {
        (self.sweep_bytes / size).clamp(self.sweep_min, self.sweep_max)
    }

    /// The plan in one line, for the report's `run:` line and the JSON.
    pub fn describe(&self) -> String {
        format!(
            "{} run: {} calls per per-call figure, {} blocks of {}, sweep {}..{} samples per size, {} idle-wake samples, load budget {} s",
            if self.quick { "quick" } else { "full" },
            self.calls,
            self.blocks,
            BLOCK,
            self.sweep_min,
            self.sweep_max,
            self.wake_samples,
            self.load_budget.as_secs()
        )
    }
}
