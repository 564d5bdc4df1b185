//! From a Kerberos principal to a local user, as knfsd's helpers (rpc.svcgssd, gssproxy)
//! do with nfsidmap's `Local-Realms`: `user@REALM`, REALM one of the local realms, is the
//! passwd user `user` with the groups the group database gives it.

use std::ffi::CString;

use crate::ffi;

/// The user a request runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// getgrouplist's answer: the primary group first, then every group that lists the
    /// user.
    pub groups: Vec<u32>,
}

/// The local user of `principal` (`alice@RINGNFS.TEST`, as the acceptor reports it), or
/// None when:
/// - its realm is not one of `local_realms` (compared exactly: realms are case-sensitive),
/// - it is a machine or service principal (`nfs/host@REALM`, `host/host@REALM`: any name
///   with a `/`); the caller decides what those become (knfsd: the anonymous user),
/// - no local user has that name (or the look-up failed), or the name has an escaped
///   character (`\`), which no passwd name has.
pub fn map_principal(principal: &str, local_realms: &[String]) -> Option<Identity> {
    let (name, realm) = principal.rsplit_once('@')?;
    if name.is_empty() || name.contains(['/', '\\']) {
        return None;
    }
    if !local_realms.iter().any(|r| r == realm) {
        return None;
    }
    let cname = CString::new(name).ok()?;
    let (uid, gid) = ffi::passwd_ids(&cname)?;
    Some(Identity {
        uid,
        gid,
        groups: ffi::group_list(&cname, gid),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realms() -> Vec<String> {
        vec!["RINGNFS.TEST".to_string(), "OTHER.TEST".to_string()]
    }

    #[test]
    fn a_user_of_a_local_realm_is_the_passwd_user() {
        let root = map_principal("root@RINGNFS.TEST", &realms()).expect("root exists");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.groups.contains(&0), "{root:?}");
        assert_eq!(map_principal("root@OTHER.TEST", &realms()), Some(root));
    }

    #[test]
    fn unknown_users_foreign_realms_and_machines_map_to_nothing() {
        let r = realms();
        assert_eq!(map_principal("no-such-user-ringnfs@RINGNFS.TEST", &r), None);
        assert_eq!(map_principal("root@ELSEWHERE.TEST", &r), None);
        assert_eq!(map_principal("root@ringnfs.test", &r), None);
        assert_eq!(map_principal("root", &r), None);
        assert_eq!(map_principal("@RINGNFS.TEST", &r), None);
        assert_eq!(map_principal("nfs/localhost@RINGNFS.TEST", &r), None);
        assert_eq!(map_principal("host/client.example@RINGNFS.TEST", &r), None);
        assert_eq!(map_principal("root\\@x@RINGNFS.TEST", &r), None);
        assert_eq!(map_principal("root@RINGNFS.TEST", &[]), None);
    }
}
