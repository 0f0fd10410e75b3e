//! The running kernel's version, which Docker/OCI profiles consult
//! (`includes: { minKernel: "4.8" }`): a rule written for newer kernels must
//! not apply on an older one, where the syscall it allows may mean something
//! else or not exist.
//!
//! ```
//! use ffb_policy::kernel::parse_kernel_version;
//! assert_eq!(parse_kernel_version("6.8.0-45-generic"), Some((6, 8)));
//! ```

/// The running kernel's `(major, minor)` version, from `uname(2)`
/// (`(0, 0)` if it cannot be read, which fails every `minKernel` include).
pub fn running_kernel() -> (u32, u32) {
    // SAFETY: `utsname` is a struct of byte arrays, for which all zeroes is a
    // valid value (empty strings).
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a live, writable `utsname`, which is all uname(2)
    // writes to; it keeps no pointer to it after returning.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return (0, 0);
    }
    let release: String = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8 as char)
        .collect();
    parse_kernel_version(&release).unwrap_or((0, 0))
}

/// `"6.8.0-45-generic"` → `(6, 8)`; `"4.8"` → `(4, 8)`; `"5"` → `(5, 0)`.
pub fn parse_kernel_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = match parts.next() {
        Some(m) => m.parse().ok()?,
        None => 0,
    };
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel_version("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(parse_kernel_version("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel_version("5"), Some((5, 0)));
        assert_eq!(parse_kernel_version("x.y"), None);
        assert!(running_kernel() >= (3, 0));
    }
}
