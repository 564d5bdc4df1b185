//! `struct stat` → [`Attrs`], and [`SetTime`] → utimensat times.

use crate::{Attrs, FileType, SetTime, Timespec};

pub(super) fn file_type(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFBLK => FileType::Block,
        libc::S_IFCHR => FileType::Char,
        libc::S_IFIFO => FileType::Fifo,
        libc::S_IFSOCK => FileType::Socket,
        _ => FileType::Regular,
    }
}

fn ts(secs: i64, nsecs: i64) -> Timespec {
    Timespec {
        secs,
        nsecs: nsecs.clamp(0, 999_999_999) as u32,
    }
}

/// The change attribute: ctime in nanoseconds. Linux updates ctime on every data or
/// metadata change, and since 6.13 ext4/xfs/btrfs/tmpfs use multigrain timestamps (a
/// change right after a stat gets a fine-grained ctime), so two changes seen apart get
/// different values. The kernel's i_version is not exported to user space
/// (STATX_CHANGE_COOKIE is kernel-internal).
fn change(st: &libc::stat) -> u64 {
    (st.st_ctime as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(st.st_ctime_nsec as u64)
}

pub(super) fn from_stat(st: &libc::stat) -> Attrs {
    Attrs {
        ftype: file_type(st.st_mode),
        mode: st.st_mode & 0o7777,
        nlink: st.st_nlink.min(u64::from(u32::MAX)) as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        size: st.st_size.max(0) as u64,
        space_used: (st.st_blocks.max(0) as u64).saturating_mul(512),
        atime: ts(st.st_atime, st.st_atime_nsec),
        mtime: ts(st.st_mtime, st.st_mtime_nsec),
        ctime: ts(st.st_ctime, st.st_ctime_nsec),
        fileid: st.st_ino,
        rdev: (libc::major(st.st_rdev), libc::minor(st.st_rdev)),
        change: change(st),
    }
}

/// utimensat(2) times for an optional new atime and mtime.
pub(super) fn utimens(atime: Option<SetTime>, mtime: Option<SetTime>) -> [libc::timespec; 2] {
    let one = |t: Option<SetTime>| match t {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(SetTime::ServerNow) => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Some(SetTime::Client(t)) => libc::timespec {
            tv_sec: t.secs,
            tv_nsec: i64::from(t.nsecs.min(999_999_999)),
        },
    };
    [one(atime), one(mtime)]
}
