//! The files the CLI reads and writes on the user's behalf. Reading is
//! `ffb_policy::files` (regular files only, each under a bound that fits its
//! purpose), which the policy crate uses for the files it reads itself;
//! here are the CLI's own bounds and the check that an output path can be
//! appended to before anything starts.

use std::fs::OpenOptions;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

pub use ffb_policy::files::{
    human_bytes, not_regular, os_error, read_regular, read_regular_text, MAX_MANIFEST, MAX_POLICY,
};

/// Largest `ffb policy learn` script.
pub const MAX_SCRIPT: u64 = 16 << 20;

/// What may take output at a path besides a regular file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// Only a regular file (a log that must keep every line: a device such
    /// as /dev/full would take the open and lose every write).
    RegularFile,
    /// A regular file or a character device (a terminal, /dev/null).
    FileOrDevice,
}

/// Checks, before anything is started, that `path` could be opened for
/// appending as `sink` allows: it is such a file, or it does not exist yet
/// (then its directory must). Nothing is created. A FIFO, a directory or a
/// socket is refused: opening a FIFO would wait for a reader.
pub fn check_appendable(path: &Path, sink: Sink) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(meta)
            if meta.file_type().is_file()
                || (sink == Sink::FileOrDevice && meta.file_type().is_char_device()) =>
        {
            OpenOptions::new()
                .append(true)
                .custom_flags(O_NONBLOCK)
                .open(path)
                .map(drop)
                .map_err(|e| format!("cannot open it for appending: {}", os_error(&e)))
        }
        Ok(meta) => Err(not_regular(meta.file_type())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            match std::fs::metadata(dir) {
                Ok(meta) if meta.is_dir() => Ok(()),
                Ok(_) => Err("its directory is not a directory".into()),
                Err(e) => Err(format!("its directory: {}", os_error(&e))),
            }
        }
        Err(e) => Err(os_error(&e)),
    }
}

/// Linux's O_NONBLOCK (the same on x86_64 and aarch64), without a libc
/// dependency for one constant.
const O_NONBLOCK: i32 = 0o4000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_can_be_appended_to_is_accepted() {
        let dir = std::env::temp_dir().join(format!("ffb-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f");
        std::fs::write(&f, b"12345").unwrap();
        for sink in [Sink::RegularFile, Sink::FileOrDevice] {
            assert!(check_appendable(&f, sink).is_ok());
            assert!(check_appendable(&dir.join("new"), sink).is_ok());
            assert!(check_appendable(&dir.join("no/such"), sink).is_err());
            assert!(check_appendable(&dir, sink).is_err());
        }
        assert!(check_appendable(Path::new("/dev/full"), Sink::RegularFile).is_err());
        assert!(check_appendable(Path::new("/dev/null"), Sink::FileOrDevice).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
