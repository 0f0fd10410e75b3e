//! The fixture library as a bridge sees it: its four declared functions, and
//! the main bridge the hot, sweep, idle and load measurements share.

use std::cell::{RefCell, RefMut};

use ffb_loader::{Bridge, BridgeBuilder, BridgeMode, CallOutput, FunctionId, Value, WORST_CASE};

use crate::measure::ok;
use crate::plan::MAIN_ARENA;

/// A bridge to the fixture at `lib` with an arena of `arena` bytes.
pub fn builder(lib: &str, arena: usize) -> BridgeBuilder {
    Bridge::builder(lib)
        .bridge_mode(BridgeMode::Enabled)
        .declare("ffb_nop() -> void")
        .declare("ffb_add_i64(i64, i64) -> i64")
        .declare("ffb_mix4(i32, f64, i64, f32) -> f64")
        .declare("ffb_nop_bytes(bytes) -> void")
        .arena_size(arena)
}

/// Loads a bridge to the fixture, with the bridge's error as text.
pub fn load(lib: &str, arena: usize) -> Result<Bridge, String> {
    builder(lib, arena).load().map_err(|e| e.to_string())
}

pub struct Functions {
    pub nop: FunctionId,
    pub add: FunctionId,
    pub mix: FunctionId,
    pub bytes: FunctionId,
}

pub fn functions(b: &Bridge) -> Functions {
    let f = |name| b.function(name).expect("declared");
    Functions {
        nop: f("ffb_nop"),
        add: f("ffb_add_i64"),
        mix: f("ffb_mix4"),
        bytes: f("ffb_nop_bytes"),
    }
}

/// The main bridge and the output its calls fill, shared by the interleaved
/// measurements (a RefCell costs ~1 ns a call).
pub struct Hot {
    cell: RefCell<(Bridge, CallOutput)>,
    pub fns: Functions,
}

impl Hot {
    pub fn load(lib: &str) -> Result<Hot, String> {
        let bridge = load(lib, MAIN_ARENA)?;
        let fns = functions(&bridge);
        let out = CallOutput {
            ret: Value::Null,
            out: Vec::new(),
            effects: &WORST_CASE,
        };
        Ok(Hot {
            cell: RefCell::new((bridge, out)),
            fns,
        })
    }

    /// One bridged call; a failure ends the run.
    pub fn call(&self, f: FunctionId, args: &[Value]) {
        let (bridge, out) = &mut *self.cell.borrow_mut();
        ok(bridge.call_into(f, args, out));
    }

    /// The bridge and its output, for a step that makes all its calls itself.
    pub fn borrow(&self) -> RefMut<'_, (Bridge, CallOutput)> {
        self.cell.borrow_mut()
    }
}
