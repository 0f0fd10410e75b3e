//! libpq's default user name, filled in by the host. Given no `user`, libpq
//! takes `PGUSER`, else the effective user's name (`getpwuid`). Neither
//! works in the helper: its environment is empty, and it runs under a
//! sandbox uid that has no passwd entry ("could not look up local user
//! ID"). So the host, which has both, adds the `user` libpq would have
//! chosen on the host to the string the helper gets.

use std::ffi::CStr;

use super::conninfo;

/// The longest passwd entry buffer tried before giving up.
const MAX_PASSWD_BUFFER: usize = 1 << 20;

/// `conninfo`, naming the host's default user unless it names a user; as
/// given when there is no default user to name (libpq then reports it).
pub(super) fn with_default_user(conninfo: &str) -> String {
    match default_user() {
        Some(user) => with_user(conninfo, &user),
        None => conninfo.to_string(),
    }
}

/// `PGUSER`, else the effective user's name.
fn default_user() -> Option<String> {
    std::env::var("PGUSER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(effective_user_name)
}

/// `conninfo` with `user` added, unless it names a (non-empty) user: a
/// `user` pair at the end of `key=value` pairs, or a `user` query
/// parameter at the end of a URI (libpq takes the last of either).
fn with_user(conninfo: &str, user: &str) -> String {
    let Ok(pairs) = conninfo::parse(conninfo) else {
        // Malformed: libpq says so in its own words.
        return conninfo.to_string();
    };
    if conninfo::value(&pairs, "user").is_some_and(|u| !u.is_empty()) {
        return conninfo.to_string();
    }
    if conninfo::is_uri(conninfo) {
        let separator = if conninfo.contains('?') { '&' } else { '?' };
        format!("{conninfo}{separator}user={}", percent_encode(user))
    } else {
        let quoted = user.replace('\\', "\\\\").replace('\'', "\\'");
        format!("{conninfo} user='{quoted}'")
    }
}

/// `text` with every byte but the URI's unreserved ones percent-encoded.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The host's effective user's name, from its passwd entry.
fn effective_user_name() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let mut buffer = vec![0u8; 1024];
    loop {
        // SAFETY: passwd is plain C data (integers and pointers), for which
        // all zeroes is a valid value; getpwuid_r fills it in.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `entry`, `buffer` (with its true length) and `found` are
        // valid for writes for the whole call, and nothing else holds them.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut entry,
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buffer.len() < MAX_PASSWD_BUFFER {
            let bigger = buffer.len() * 2;
            buffer.resize(bigger, 0);
            continue;
        }
        if rc != 0 || found.is_null() || entry.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success `pw_name` points to a NUL-terminated string in
        // `buffer`, which is alive and unchanged until this function returns.
        let name = unsafe { CStr::from_ptr(entry.pw_name) };
        return name.to_str().ok().map(str::to_owned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_added_only_when_none_is_named() {
        assert_eq!(
            with_user("host=/s port=1", "me"),
            "host=/s port=1 user='me'"
        );
        assert_eq!(with_user("host=/s user=u", "me"), "host=/s user=u");
        // An empty user is libpq's default, which the helper cannot find.
        assert_eq!(
            with_user("user='' host=/s", "me"),
            "user='' host=/s user='me'"
        );
        assert_eq!(with_user("host=/s", "o'b\\x"), "host=/s user='o\\'b\\\\x'");
        assert_eq!(
            with_user("postgresql://h:5/db", "a b@c"),
            "postgresql://h:5/db?user=a%20b%40c"
        );
        assert_eq!(
            with_user("postgresql://h/db?sslmode=disable", "me"),
            "postgresql://h/db?sslmode=disable&user=me"
        );
        assert_eq!(
            with_user("postgresql://u@h/db", "me"),
            "postgresql://u@h/db"
        );
        assert_eq!(with_user("host", "me"), "host", "malformed: as given");
    }

    #[test]
    fn what_is_added_reads_back_as_that_user() {
        for (conninfo, user) in [("host=/s", "o'b\\x y"), ("postgres://h/db", "ü ?&=%")] {
            let pairs = conninfo::parse(&with_user(conninfo, user)).unwrap();
            assert_eq!(conninfo::value(&pairs, "user"), Some(user), "{conninfo}");
        }
    }

    #[test]
    fn the_effective_user_has_a_name() {
        // The test runs as a user with a passwd entry (root in CI).
        let name = effective_user_name().expect("a passwd entry for the euid");
        assert!(!name.is_empty());
    }
}
