//! Who the helper runs as: a policy's `run_as` user and group, resolved to
//! numbers when the policy is loaded.
//!
//! Resolution happens on the host, against its `/etc/passwd` and `/etc/group`,
//! because the helper cannot look anything up once it has dropped to that
//! user, and a name that resolves differently later would change what the
//! policy's hash stands for.

use crate::sandbox::Identity;

/// Resolves a user (a name or a uid) and an optional group (a name or a gid)
/// against the text of `/etc/passwd` and `/etc/group`.
///
/// Without a group, the gid is the user's primary group from `passwd`, or, for a
/// uid with no entry, the same number. Errors about the group start with "group".
///
/// ```
/// use ffb_policy::identity::resolve_identity;
/// let passwd = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n";
/// let group = "root:x:0:\nnogroup:x:65534:\n";
/// let id = resolve_identity("nobody", None, passwd, group).unwrap();
/// assert_eq!((id.uid, id.gid), (65534, 65534));
/// assert_eq!(resolve_identity("1000", Some("nogroup"), passwd, group).unwrap().gid, 65534);
/// assert!(resolve_identity("alice", None, passwd, group).is_err());
/// ```
pub fn resolve_identity(
    user: &str,
    group: Option<&str>,
    passwd: &str,
    group_file: &str,
) -> Result<Identity, String> {
    if user.is_empty() {
        return Err("run_as is empty: give a user name or a uid".to_string());
    }
    // passwd: name:password:uid:gid:...; group: name:password:gid:...
    let users: Vec<(&str, u32, u32)> = entries(passwd)
        .filter_map(|f| Some((f[0], f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))
        .collect();
    let (uid, primary_gid) = match id_number(user, "uid") {
        Some(uid) => {
            let uid = uid?;
            let primary = users
                .iter()
                .find(|(_, u, _)| *u == uid)
                .map_or(uid, |(_, _, g)| *g);
            (uid, primary)
        }
        None => {
            let (_, uid, gid) = users
                .iter()
                .find(|(n, _, _)| *n == user)
                .ok_or_else(|| format!("no user '{user}' in /etc/passwd"))?;
            (*uid, *gid)
        }
    };
    let gid = match group {
        None => primary_gid,
        Some(g) => match id_number(g, "group id") {
            Some(gid) => gid?,
            None => entries(group_file)
                .filter_map(|f| Some((f[0], f.get(2)?.parse::<u32>().ok()?)))
                .find(|(n, _)| *n == g)
                .map(|(_, gid)| gid)
                .ok_or_else(|| format!("group '{g}' is not in /etc/group"))?,
        },
    };
    Ok(Identity {
        uid,
        gid,
        name: match group {
            Some(g) => format!("{user}:{g}"),
            None => user.to_string(),
        },
    })
}

/// The colon-separated fields of each entry of a passwd or group file
/// (comments skipped, the name trimmed).
fn entries(file: &str) -> impl Iterator<Item = Vec<&str>> {
    file.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| {
            let mut fields: Vec<&str> = l.split(':').collect();
            fields[0] = fields[0].trim();
            fields
        })
}

/// `text` as a uid or gid if it is a number (`None` for a name). `u32::MAX`
/// is refused: it is `-1`, "no change", to `setresuid` and `setresgid`.
fn id_number(text: &str, what: &str) -> Option<Result<u32, String>> {
    let n = text.parse::<i64>().ok()?;
    Some(
        u32::try_from(n)
            .ok()
            .filter(|&id| id != u32::MAX)
            .ok_or_else(|| format!("{what} {n} is out of range")),
    )
}

/// [`resolve_identity`] against this machine's `/etc/passwd` and `/etc/group`.
pub fn resolve_identity_here(user: &str, group: Option<&str>) -> Result<Identity, String> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    resolve_identity(user, group, &passwd, &groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_resolve_from_passwd_text() {
        let passwd = "# comment\nroot:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\napp:x:1001:1002::/home/app:/bin/sh\n";
        let group = "root:x:0:\nnogroup:x:65534:\napp:x:1002:\n";
        let app = resolve_identity("app", None, passwd, group).unwrap();
        assert_eq!((app.uid, app.gid), (1001, 1002));
        let n = resolve_identity("1001", None, passwd, group).unwrap();
        assert_eq!((n.uid, n.gid), (1001, 1002));
        let bare = resolve_identity("4000", None, passwd, group).unwrap();
        assert_eq!((bare.uid, bare.gid), (4000, 4000));
        let g = resolve_identity("app", Some("nogroup"), passwd, group).unwrap();
        assert_eq!((g.gid, g.name.as_str()), (65534, "app:nogroup"));
        assert!(resolve_identity("ghost", None, passwd, group).is_err());
        assert!(resolve_identity("app", Some("ghosts"), passwd, group)
            .unwrap_err()
            .starts_with("group"));
        assert!(resolve_identity("-1", None, passwd, group).is_err());
        // "nobody" must resolve on this machine.
        let here = resolve_identity_here("nobody", None).unwrap();
        assert_eq!(here.name, "nobody");
    }
}
