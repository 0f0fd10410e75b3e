//! The bodies of ffb's fuzz targets: one function per target, taking the
//! fuzzer's bytes. The cargo-fuzz targets (`fuzz/fuzz_targets/`) call them,
//! and so does the replay test (`tests/replay.rs`), with every saved corpus
//! entry and every regression input, so a crash found once stays fixed.
//!
//! Each function panics when, and only when, ffb misbehaves on the input: a
//! panic inside the code under test, or a property below that fails. Bad
//! input is never a failure: it must come back as an error value.
//!
//! | function | what it feeds |
//! |---|---|
//! | [`policy_toml`] | a TOML policy (`parse_toml_policy_for`), then compiles it |
//! | [`policy_seccompiler`] | a seccompiler JSON filter (`import_seccompiler`), then compiles it |
//! | [`policy_oci`] | a Docker/OCI seccomp profile (`import_docker`), then compiles it |
//! | [`manifest`] | a library manifest (`Manifest::parse`) |
//! | [`signature`] | a C signature (`Signature::parse`) and an effect list |
//! | [`arguments`] | a signature, then its arguments in the text and JSON forms of the CLI |
//! | [`session_line`] | `ffb session` input, through its line reader, each line as a request |
//! | [`host_decode`] | what a helper writes, decoded by the host: handshake, fetch answer and page, message, return words, returned strings |
//! | [`host_race`] | the same reads while a hostile thread rewrites the bytes being read |

use std::sync::OnceLock;

use ffb_loader::fuzzing::FuzzArena;
use memory::GuardedPage;

// The CLI's own argument and request parsers, compiled here from its
// sources with what they use (the CLI is a binary, with no library to
// link), at the root as in the CLI, so their `crate::` paths resolve.
// They are linted where they live, in the CLI crate.
#[allow(dead_code, clippy::all)]
#[path = "../../../cli/src/args.rs"]
mod args;
#[allow(dead_code, clippy::all)]
#[path = "../../../cli/src/exit.rs"]
mod exit;
#[allow(dead_code, clippy::all)]
#[path = "../../../cli/src/files.rs"]
mod files;
#[allow(dead_code, clippy::all)]
#[path = "../../../cli/src/lines.rs"]
mod lines;
#[allow(dead_code, clippy::all)]
#[path = "../../../cli/src/output.rs"]
mod output;
#[allow(dead_code, clippy::all)]
#[path = "../../../cli/src/request.rs"]
mod request;

mod cli;
mod decode;
mod input;
mod memory;
mod policy;
mod race;

pub use cli::{arguments, session_line, signature};
pub use decode::host_decode;
pub use policy::{manifest, policy_oci, policy_seccompiler, policy_toml};
pub use race::host_race;

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target, by name, for the replay test.
pub const TARGETS: &[(&str, Target)] = &[
    ("policy_toml", policy_toml),
    ("policy_seccompiler", policy_seccompiler),
    ("policy_oci", policy_oci),
    ("manifest", manifest),
    ("signature", signature),
    ("arguments", arguments),
    ("session_line", session_line),
    ("host_decode", host_decode),
    ("host_race", host_race),
];

/// The arena `host_decode` writes and reads: creating a memfd per input
/// would measure the kernel, not the decoders. `host_race` has its own, so
/// the two can run side by side (as the replay test's threads do).
fn decode_arena() -> &'static FuzzArena {
    static ARENA: OnceLock<FuzzArena> = OnceLock::new();
    ARENA.get_or_init(new_arena)
}

/// The guarded page `host_decode` puts returned strings in.
fn decode_page() -> &'static GuardedPage {
    static PAGE: OnceLock<GuardedPage> = OnceLock::new();
    PAGE.get_or_init(GuardedPage::new)
}

fn new_arena() -> FuzzArena {
    FuzzArena::create(ARENA_LEN).unwrap_or_else(|e| panic!("fuzz: cannot create an arena: {e}"))
}

/// The fuzzing arenas' size: the smallest the host creates, twice over.
const ARENA_LEN: usize = 2 * ffb_contract::wire::MIN_ARENA;
