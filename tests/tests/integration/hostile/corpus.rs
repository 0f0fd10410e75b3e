//! The hostile corpus as a library: every `.c` file in `tests/hostile/`
//! compiled into one `libffb_hostile_corpus.so`, once per set of sources.
//!
//! It is compiled here rather than by `tests/build.rs` so that the corpus
//! is one library built from many files (one per class family), each
//! rebuilt when any source changes: the library goes in a directory named
//! after a hash of every source's name and bytes, under the target
//! directory, and a test run that finds it there compiles nothing. The
//! directory holds only the library, because Landlock lets a helper read its
//! library's whole directory. The flags are the other fixtures'
//! (`-Wall -Wextra -Werror`), so a warning fails the suite.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ffb_tests::target_dir;

/// The sources' directory.
fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hostile")
}

/// The corpus library, compiled on first use.
///
/// # Panics
/// If a source cannot be read or the compiler fails, with its output.
pub fn corpus_lib() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(compile)
}

fn compile() -> PathBuf {
    let dir = source_dir();
    let mut sources: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("c" | "h")))
        .collect();
    sources.sort();
    let mut hash = Fnv::default();
    for path in &sources {
        hash.add(path.file_name().unwrap().as_encoded_bytes());
        hash.add(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
    }
    let out_dir = target_dir().join(format!("ffb-hostile-corpus-{:016x}", hash.0));
    let lib = out_dir.join("libffb_hostile_corpus.so");
    if lib.is_file() {
        return lib;
    }
    fs::create_dir_all(&out_dir).unwrap_or_else(|e| panic!("{}: {e}", out_dir.display()));
    // Another test binary may compile at the same time: each writes its own
    // file and renames it into place, which is atomic.
    let partial = out_dir.join(format!(".partial-{}", std::process::id()));
    let compiler = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let output = Command::new(&compiler)
        .args([
            "-shared", "-fPIC", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-o",
        ])
        .arg(&partial)
        .args(
            sources
                .iter()
                .filter(|p| p.extension().is_some_and(|x| x == "c")),
        )
        .arg("-lpthread")
        .output()
        .unwrap_or_else(|e| panic!("running the C compiler {compiler:?}: {e}"));
    assert!(
        output.status.success(),
        "compiling the hostile corpus in {} failed ({}):\n{}{}",
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    fs::rename(&partial, &lib).unwrap_or_else(|e| panic!("{}: {e}", lib.display()));
    lib
}

/// FNV-1a, 64 bits: enough to tell one set of sources from another.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn add(&mut self, bytes: &[u8]) {
        for b in bytes.iter().chain(&[0xff]) {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}
