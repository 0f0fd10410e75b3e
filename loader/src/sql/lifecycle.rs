//! The end of a driver's objects in the helper (results, statements,
//! connections, environments): each is freed once, and the free's own
//! answer is never reported. On an error path the first error is the one
//! that counts; at finalize or drop there is no one to report to. Once the
//! helper is gone its objects are gone with it, and a free would only start
//! a new helper to be told the handle is stale, so nothing is freed then.

use crate::bridge::{Bridge, FunctionId};
use crate::value::Value as Raw;

/// Whether the helper that holds the driver's objects still runs.
pub(super) fn helper_alive(bridge: &Bridge) -> bool {
    bridge.helper_pid().is_some()
}

/// Frees an object with `f(args)` while another error is being reported.
pub(super) fn free_quietly(bridge: &mut Bridge, f: FunctionId, args: &[Raw]) {
    let _ = bridge.call(f, args);
}

/// Frees an object at finalize or drop: only while its helper runs.
pub(super) fn free_at_close(bridge: &mut Bridge, f: FunctionId, args: &[Raw]) {
    if helper_alive(bridge) {
        free_quietly(bridge, f, args);
    }
}
