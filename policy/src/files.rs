//! Reading the files ffb is given (policies, imported profiles, manifests,
//! `@FILE` arguments, scripts): regular files only, each under a size bound
//! that fits its purpose.
//!
//! A FIFO or a device given where a file is meant would block or never end
//! (`--policy /dev/zero`), so the file is opened without blocking and
//! checked to be a regular file before a byte is read; and it is read to at
//! most its bound plus one byte, so a file that grows while it is read is
//! refused too.
//!
//! ```
//! use ffb_policy::files::read_regular_text;
//!
//! let e = read_regular_text("/dev/zero".as_ref(), 1 << 20).unwrap_err();
//! assert_eq!(e, "it is a character device, not a regular file");
//! ```

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Largest policy file (also an imported profile): Docker's default
/// profile is about 20 KiB.
pub const MAX_POLICY: u64 = 4 << 20;
/// Largest manifest.
pub const MAX_MANIFEST: u64 = 4 << 20;

/// Reads the regular file at `path`, of at most `limit` bytes. The error
/// says what is wrong, without the path (the caller names the file in its
/// own words).
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {}", os_error(&e)))?;
    if bytes.len() as u64 > limit {
        return Err(format!("it is larger than {}", human_bytes(limit)));
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

fn open_regular(path: &Path) -> Result<File, String> {
    // O_NONBLOCK: opening a FIFO for reading would wait for a writer. It
    // changes nothing for a regular file.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
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

/// Why a file of type `ty` is not what was meant.
pub fn not_regular(ty: std::fs::FileType) -> String {
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
        let dir = std::env::temp_dir().join(format!("ffb-policy-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f");
        std::fs::write(&f, b"12345").unwrap();
        assert_eq!(read_regular(&f, 5).unwrap(), b"12345");
        assert_eq!(
            read_regular(&f, 4).unwrap_err(),
            "it is larger than 4 bytes"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(human_bytes(64 << 20), "64 MiB");
    }

    /// The files the policy crate reads itself go through the same bound:
    /// a policy file, a manifest, and a profile a TOML policy imports.
    #[test]
    fn every_file_the_policy_crate_reads_is_bounded() {
        let device = "it is a character device, not a regular file";
        let e = crate::source::load_policy("/dev/zero").unwrap_err();
        assert!(e.to_string().contains(device), "{e}");
        let e = crate::manifest::Manifest::load("/dev/zero").unwrap_err();
        assert!(e.to_string().contains(device), "{e}");
        let e =
            crate::source::parse_toml_policy("[seccomp]\nimport = \"/dev/zero\"\n", "import.toml")
                .unwrap_err();
        assert!(e.to_string().contains(device), "{e}");
    }
}
