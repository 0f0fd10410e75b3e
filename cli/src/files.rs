//! The files ffb reads on the user's behalf (`@FILE` arguments, policies,
//! manifests, learn scripts): regular files only, each under a size bound
//! that fits its purpose.
//!
//! A FIFO or a device given where a file is meant would block or never end
//! (`--policy /dev/zero`), so the file is opened without blocking and
//! checked to be a regular file before a byte is read; and it is read to at
//! most its bound plus one byte, so a file that grows while it is read is
//! refused too.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Largest policy file: Docker's default profile is about 20 KiB.
pub const MAX_POLICY: u64 = 4 << 20;
/// Largest manifest.
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Largest `ffb policy learn` script.
pub const MAX_SCRIPT: u64 = 16 << 20;

/// Reads the regular file at `path`, of at most `limit` bytes. The error
/// says what is wrong, without the path (the caller names the file in the
/// words of its flag).
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {}", os_error(&e)))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

/// [`read_regular`], as UTF-8 text.
pub fn read_regular_text(path: &Path, limit: u64) -> Result<String, String> {
    let bytes = read_regular(path, limit)?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "it is not UTF-8 text (byte {} is not valid)",
            e.utf8_error().valid_up_to()
        )
    })
}

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

fn open_regular(path: &Path) -> Result<File, String> {
    // O_NONBLOCK: opening a FIFO for reading would wait for a writer. It
    // changes nothing for a regular file.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
        .map_err(|e| os_error(&e))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read it: {}", os_error(&e)))?;
    if !meta.file_type().is_file() {
        return Err(not_regular(meta.file_type()));
    }
    Ok(file)
}

/// Linux's O_NONBLOCK (the same on x86_64 and aarch64), without a libc
/// dependency for one constant.
const O_NONBLOCK: i32 = 0o4000;

fn not_regular(ty: std::fs::FileType) -> String {
    let what = if ty.is_dir() {
        "a directory"
    } else if ty.is_fifo() {
        "a FIFO"
    } else if ty.is_char_device() {
        "a character device"
    } else if ty.is_block_device() {
        "a block device"
    } else if ty.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    format!("it is {what}, not a regular file")
}

fn too_large(limit: u64) -> String {
    format!("it is larger than {}", human_bytes(limit))
}

/// `n` bytes as a person reads it: `64 MiB`, `4 KiB`, `100 bytes`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} bytes")
}

/// An I/O error without Rust's `(os error N)` suffix.
pub fn os_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bounded_regular_files_are_read() {
        assert!(read_regular(Path::new("/dev/zero"), 10)
            .unwrap_err()
            .contains("character device"));
        assert!(read_regular(Path::new("/"), 10)
            .unwrap_err()
            .contains("a directory"));
        let dir = std::env::temp_dir().join(format!("ffb-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f");
        std::fs::write(&f, b"12345").unwrap();
        assert_eq!(read_regular(&f, 5).unwrap(), b"12345");
        assert_eq!(
            read_regular(&f, 4).unwrap_err(),
            "it is larger than 4 bytes"
        );
        for sink in [Sink::RegularFile, Sink::FileOrDevice] {
            assert!(check_appendable(&f, sink).is_ok());
            assert!(check_appendable(&dir.join("new"), sink).is_ok());
            assert!(check_appendable(&dir.join("no/such"), sink).is_err());
            assert!(check_appendable(&dir, sink).is_err());
        }
        assert!(check_appendable(Path::new("/dev/full"), Sink::RegularFile).is_err());
        assert!(check_appendable(Path::new("/dev/null"), Sink::FileOrDevice).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(human_bytes(64 << 20), "64 MiB");
    }
}
