//! Whole-server tests of open and lock state over real sockets, on both backends: OPEN
//! claims and create modes, share reservations, OPEN_DOWNGRADE, CLOSE, stateid checks
//! (BAD/OLD_STATEID, TEST_STATEID, FREE_STATEID), byte-range locks between two clients.

pub mod common;
pub mod files_common;

use files_common::{failure_of, for_each_backend, status_of};
use ringnfs::client::ops::{deleg, locktype, open_result, share, stable};
use ringnfs::client::{Fattr, Files, Op, OpenClaim, OpenFile, OpenHow, Stateid};
use ringnfs::nfs4::attrs::attr;
use ringnfs::nfs4::consts::{NfsStatus, op, status};

fn has(words: &[u32], a: u32) -> bool {
    words
        .get(a as usize / 32)
        .is_some_and(|w| w & (1 << (a % 32)) != 0)
}

fn new_file(f: &Files, name: &[u8], data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let root = f.root_fh().unwrap();
    let fh = f.write_file(&root, name, data).unwrap();
    (root, fh)
}

#[test]
fn open_claims_and_create_modes() {
    for_each_backend(|env| {
        let f = env.files();
        let root = f.root_fh().unwrap();
        let d = f.mkdir(&root, b"open", 0o777).unwrap();

        // CLAIM_NULL + UNCHECKED create: attrset has the mode, no delegation, POSIX locks.
        let args = f.open_args(
            share::ACCESS_BOTH,
            share::DENY_NONE,
            OpenHow::Unchecked(Fattr::new().mode(0o640)),
            OpenClaim::Null(b"f".to_vec()),
        );
        let (of, res) = f.open_with(&d, args.clone()).unwrap();
        assert!(has(&res.attrset, attr::MODE), "{:?}", res.attrset);
        assert_eq!(res.delegation.kind(), deleg::NONE);
        assert!(res.rflags & open_result::LOCKTYPE_POSIX != 0);
        assert_eq!(
            res.rflags & open_result::CONFIRM,
            0,
            "no OPEN_CONFIRM in 4.1"
        );
        assert_ne!(res.cinfo.before, res.cinfo.after);
        assert_eq!(res.stateid.seqid, 1);
        assert_eq!(f.getattr(&of.fh).unwrap().mode, Some(0o640));
        f.write(&of, 0, b"data", stable::FILE_SYNC).unwrap();
        // UNCHECKED again on the existing file: opens it (same owner: upgrade, seqid 2),
        // attrset empty, contents kept.
        let (of2, res2) = f.open_with(&d, args).unwrap();
        assert_eq!(of2.fh, of.fh);
        assert!(res2.attrset.iter().all(|w| *w == 0), "{:?}", res2.attrset);
        assert_eq!(
            (res2.stateid.other, res2.stateid.seqid),
            (of.stateid.other, 2)
        );
        assert_eq!(f.getattr(&of.fh).unwrap().size, Some(4));
        // UNCHECKED with size 0 truncates.
        let args = f.open_args(
            share::ACCESS_BOTH,
            0,
            OpenHow::Unchecked(Fattr::new().size(0)),
            OpenClaim::Null(b"f".to_vec()),
        );
        let (of3, _) = f.open_with(&d, args).unwrap();
        assert_eq!(f.getattr(&of.fh).unwrap().size, Some(0));
        // GUARDED on an existing file: EXIST.
        assert_eq!(
            failure_of(f.create_new(&d, b"f", 0o644)),
            (op::OPEN, status::NFS4ERR_EXIST)
        );
        // CLAIM_FH of the file by handle.
        let byfh = f
            .open_fh(&of.fh, share::ACCESS_READ, share::DENY_NONE)
            .unwrap();
        assert_eq!(byfh.stateid.other, of.stateid.other);
        // CLAIM_FH with a create mode: INVAL.
        let args = f.open_args(
            share::ACCESS_READ,
            0,
            OpenHow::Unchecked(Fattr::new()),
            OpenClaim::Fh,
        );
        assert_eq!(status_of(f.open_with(&of.fh, args)), status::NFS4ERR_INVAL);
        f.close(byfh).unwrap();
        // Stateids of closed opens are gone for every seqid.
        assert_eq!(status_of(f.close(of3)), status::NFS4ERR_BAD_STATEID);

        // Missing file without create: NOENT; a directory: ISDIR; CLAIM_FH of a dir too.
        assert_eq!(
            status_of(f.open(&d, b"missing", share::ACCESS_READ, 0)),
            status::NFS4ERR_NOENT
        );
        f.mkdir(&d, b"sub", 0o755).unwrap();
        assert_eq!(
            status_of(f.open(&d, b"sub", share::ACCESS_READ, 0)),
            status::NFS4ERR_ISDIR
        );
        assert_eq!(
            status_of(f.open_fh(&d, share::ACCESS_READ, 0)),
            status::NFS4ERR_ISDIR
        );
        // CLAIM_NULL with a file as the directory: NOTDIR.
        assert_eq!(
            status_of(f.open(&of.fh, b"x", share::ACCESS_READ, 0)),
            status::NFS4ERR_NOTDIR
        );
        // Bad share values: INVAL.
        for (acc, deny) in [(0, 0), (4, 0), (share::ACCESS_READ, 4)] {
            assert_eq!(
                status_of(f.open(&d, b"f", acc, deny)),
                status::NFS4ERR_INVAL,
                "access {acc} deny {deny}"
            );
        }
        // No grace period, no delegations.
        let claims = [
            (
                OpenClaim::Previous(deleg::NONE),
                status::NFS4ERR_NO_GRACE,
                &of.fh,
            ),
            (
                OpenClaim::DelegateCur(of.stateid, b"f".to_vec()),
                status::NFS4ERR_BAD_STATEID,
                &d,
            ),
            (
                OpenClaim::DelegCurFh(of.stateid),
                status::NFS4ERR_BAD_STATEID,
                &of.fh,
            ),
        ];
        for (claim, want, fh) in claims {
            let args = f.open_args(share::ACCESS_READ, 0, OpenHow::NoCreate, claim.clone());
            assert_eq!(status_of(f.open_with(fh, args)), want, "{claim:?}");
        }
        for (claim, fh) in [
            (OpenClaim::DelegatePrev(b"f".to_vec()), &d),
            (OpenClaim::DelegPrevFh, &of.fh),
        ] {
            let args = f.open_args(share::ACCESS_READ, 0, OpenHow::NoCreate, claim.clone());
            let st = status_of(f.open_with(fh, args));
            assert!(
                st == status::NFS4ERR_NOTSUPP || st == status::NFS4ERR_NO_GRACE,
                "{claim:?}: {st}"
            );
        }
    });
}

#[test]
fn exclusive_creates() {
    for_each_backend(|env| {
        let f = env.files();
        let root = f.root_fh().unwrap();
        let d = f.mkdir(&root, b"excl", 0o777).unwrap();
        let excl41 = |v: [u8; 8], name: &[u8]| {
            f.open_args(
                share::ACCESS_BOTH,
                0,
                OpenHow::Exclusive41(v, Fattr::new().mode(0o600)),
                OpenClaim::Null(name.to_vec()),
            )
        };
        let (a, res) = f.open_with(&d, excl41(*b"verifier", b"x")).unwrap();
        assert!(has(&res.attrset, attr::MODE));
        assert_eq!(f.getattr(&a.fh).unwrap().mode, Some(0o600));
        // A retry with the same verifier (a lost reply) succeeds on the same file.
        let (b, _) = f.open_with(&d, excl41(*b"verifier", b"x")).unwrap();
        assert_eq!(b.fh, a.fh);
        // Another verifier: EXIST.
        assert_eq!(
            failure_of(f.open_with(&d, excl41(*b"other!!!", b"x"))),
            (op::OPEN, status::NFS4ERR_EXIST)
        );
        // EXCLUSIVE4_1 may not set the times (they hold the verifier): INVAL.
        let args = f.open_args(
            share::ACCESS_BOTH,
            0,
            OpenHow::Exclusive41(
                *b"verifie2",
                Fattr::new().time_modify_set(ringnfs::client::TimeSet::Server),
            ),
            OpenClaim::Null(b"y".to_vec()),
        );
        assert_eq!(status_of(f.open_with(&d, args)), status::NFS4ERR_INVAL);
        // EXCLUSIVE4 (the 4.0 form) behaves the same way.
        let ex4 = |v: [u8; 8]| {
            f.open_args(
                share::ACCESS_BOTH,
                0,
                OpenHow::Exclusive4(v),
                OpenClaim::Null(b"z".to_vec()),
            )
        };
        let (z, _) = f.open_with(&d, ex4([1; 8])).unwrap();
        assert_eq!(f.open_with(&d, ex4([1; 8])).unwrap().0.fh, z.fh);
        assert_eq!(
            status_of(f.open_with(&d, ex4([2; 8]))),
            status::NFS4ERR_EXIST
        );
        // Over a file created without a verifier: EXIST.
        f.write_file(&d, b"plain", b"").unwrap();
        assert_eq!(
            status_of(f.open_with(&d, excl41([0; 8], b"plain"))),
            status::NFS4ERR_EXIST
        );
        // Over a directory: EXIST (or ISDIR).
        f.mkdir(&d, b"dir", 0o755).unwrap();
        let st = status_of(f.open_with(&d, excl41([3; 8], b"dir")));
        assert!(
            st == status::NFS4ERR_EXIST || st == status::NFS4ERR_ISDIR,
            "{st}"
        );
        // The retry was an upgrade of the same open: the first stateid is now old.
        assert_eq!((b.stateid.other, b.stateid.seqid), (a.stateid.other, 2));
        assert_eq!(
            status_of(f.write(&a, 0, b"x", stable::FILE_SYNC)),
            status::NFS4ERR_OLD_STATEID
        );
        // Writing through the current stateid works and the file is usable.
        f.write(&b, 0, b"excl", stable::FILE_SYNC).unwrap();
        f.close(b).unwrap();
        assert_eq!(f.read_file(&d, b"x").unwrap(), b"excl");
    });
}

#[test]
fn share_reservations_and_downgrade() {
    for_each_backend(|env| {
        let a = env.files();
        let b = env.files(); // another client id
        let (root, fh) = new_file(&a, b"shared", b"0123456789");
        // A: read+write, deny write.
        let mut oa = a
            .open(&root, b"shared", share::ACCESS_BOTH, share::DENY_WRITE)
            .unwrap();
        // B may not write; may read; may not deny read (A reads).
        assert_eq!(
            failure_of(b.open(&root, b"shared", share::ACCESS_WRITE, 0)),
            (op::OPEN, status::NFS4ERR_SHARE_DENIED)
        );
        assert_eq!(
            status_of(b.open(&root, b"shared", share::ACCESS_BOTH, 0)),
            status::NFS4ERR_SHARE_DENIED
        );
        assert_eq!(
            status_of(b.open(&root, b"shared", share::ACCESS_READ, share::DENY_READ)),
            status::NFS4ERR_SHARE_DENIED
        );
        let ob = b.open(&root, b"shared", share::ACCESS_READ, 0).unwrap();
        // Another owner of the same client is just as refused.
        let a2 = a.with_owner(b"second owner");
        assert_eq!(
            status_of(a2.open(&root, b"shared", share::ACCESS_WRITE, 0)),
            status::NFS4ERR_SHARE_DENIED
        );
        // Anonymous WRITE while someone denies writes: LOCKED.
        assert_eq!(
            status_of(b.write_at(&fh, Stateid::ANONYMOUS, 0, b"x", stable::FILE_SYNC)),
            status::NFS4ERR_LOCKED
        );
        // A's own write is fine.
        a.write(&oa, 0, b"A", stable::FILE_SYNC).unwrap();

        // OPEN_DOWNGRADE: to more access or deny than held: INVAL.
        let before = oa.stateid;
        let mut probe = oa.clone();
        assert_eq!(
            status_of(a.open_downgrade(&mut probe, share::ACCESS_BOTH, share::DENY_BOTH)),
            status::NFS4ERR_INVAL
        );
        // To read, deny none: seqid advances, B may now open for write.
        a.open_downgrade(&mut oa, share::ACCESS_READ, share::DENY_NONE)
            .unwrap();
        assert_eq!(oa.stateid.other, before.other);
        assert_eq!(oa.stateid.seqid, before.seqid + 1);
        let obw = b.open(&root, b"shared", share::ACCESS_WRITE, 0).unwrap();
        // A now holds read only: WRITE with its stateid is OPENMODE; the old seqid OLD.
        assert_eq!(
            status_of(a.write(&oa, 0, b"x", stable::FILE_SYNC)),
            status::NFS4ERR_OPENMODE
        );
        let old = OpenFile {
            fh: oa.fh.clone(),
            stateid: before,
        };
        assert_eq!(status_of(a.read(&old, 0, 1)), status::NFS4ERR_OLD_STATEID);
        // B's write-open (an upgrade of its read open): B writes.
        assert_eq!(obw.stateid.other, ob.stateid.other);
        b.write(&obw, 1, b"B", stable::FILE_SYNC).unwrap();
        assert_eq!(a.read(&oa, 0, 3).unwrap().0, b"AB2");
        // A cannot deny write now that B writes.
        assert_eq!(
            status_of(a.open(&root, b"shared", share::ACCESS_READ, share::DENY_WRITE)),
            status::NFS4ERR_SHARE_DENIED
        );
        a.close(oa).unwrap();
        b.close(obw).unwrap();
        // Everything closed: deny both is possible again.
        let ex = a
            .open(&root, b"shared", share::ACCESS_READ, share::DENY_BOTH)
            .unwrap();
        assert_eq!(
            status_of(b.open(&root, b"shared", share::ACCESS_READ, 0)),
            status::NFS4ERR_SHARE_DENIED
        );
        a.close(ex).unwrap();
    });
}

#[test]
fn stateid_checks() {
    for_each_backend(|env| {
        let f = env.files();
        let other_client = env.files();
        let (root, fh) = new_file(&f, b"sid", b"abc");
        let r1 = f.open(&root, b"sid", share::ACCESS_READ, 0).unwrap();
        assert_eq!(r1.stateid.seqid, 1);
        // Upgrade: same other, seqid 2; the seqid-1 stateid is OLD.
        let r2 = f.open(&root, b"sid", share::ACCESS_BOTH, 0).unwrap();
        assert_eq!((r2.stateid.other, r2.stateid.seqid), (r1.stateid.other, 2));
        assert_eq!(status_of(f.read(&r1, 0, 3)), status::NFS4ERR_OLD_STATEID);
        assert_eq!(
            status_of(f.write(&r1, 0, b"x", stable::FILE_SYNC)),
            status::NFS4ERR_OLD_STATEID
        );
        // seqid 0 means "current"; a future seqid is BAD.
        let cur = Stateid {
            seqid: 0,
            ..r2.stateid
        };
        assert_eq!(f.read_at(&fh, cur, 0, 3).unwrap().0, b"abc");
        let future = Stateid {
            seqid: 9,
            ..r2.stateid
        };
        assert_eq!(
            status_of(f.read_at(&fh, future, 0, 3)),
            status::NFS4ERR_BAD_STATEID
        );
        // A made-up stateid in this server's format (one byte of `other` changed).
        let mut other = r2.stateid.other;
        other[11] ^= 0x77;
        let made_up = Stateid { seqid: 1, other };
        assert_eq!(
            failure_of(f.read_at(&fh, made_up, 0, 3)),
            (op::READ, status::NFS4ERR_BAD_STATEID)
        );
        // Entirely random bits: BAD_STATEID (or STALE_STATEID: it may look like an
        // earlier server instance's).
        let random = Stateid {
            seqid: 1,
            other: *b"random bytes",
        };
        let st = status_of(f.read_at(&fh, random, 0, 3));
        assert!(
            st == status::NFS4ERR_BAD_STATEID || st == status::NFS4ERR_STALE_STATEID,
            "{st}"
        );
        // The special stateids that are not for I/O: BAD_STATEID.
        let invalid = Stateid {
            seqid: u32::MAX,
            other: [0; 12],
        };
        assert_eq!(
            status_of(f.read_at(&fh, invalid, 0, 3)),
            status::NFS4ERR_BAD_STATEID
        );
        // Another client's stateid: BAD_STATEID; on another file: BAD_STATEID.
        assert_eq!(
            status_of(other_client.read(&r2, 0, 3)),
            status::NFS4ERR_BAD_STATEID
        );
        let fh2 = f.write_file(&root, b"sid2", b"zz").unwrap();
        assert_eq!(
            status_of(f.read_at(&fh2, r2.stateid, 0, 3)),
            status::NFS4ERR_BAD_STATEID
        );

        // TEST_STATEID: current OK, old OLD, made-up BAD, another client's BAD.
        let st = f
            .test_stateids(&[r2.stateid, r1.stateid, made_up, Stateid::ANONYMOUS])
            .unwrap();
        assert_eq!(st.len(), 4);
        assert_eq!(st[0], status::NFS4_OK);
        assert_eq!(st[1], status::NFS4ERR_OLD_STATEID);
        assert_eq!(st[2], status::NFS4ERR_BAD_STATEID);
        assert_eq!(st[3], status::NFS4ERR_BAD_STATEID);
        assert_eq!(
            other_client.test_stateids(&[r2.stateid]).unwrap(),
            vec![status::NFS4ERR_BAD_STATEID]
        );
        assert_eq!(f.test_stateids(&[]).unwrap(), Vec::<NfsStatus>::new());
        // FREE_STATEID of an open stateid: LOCKS_HELD (it is still open); made-up: BAD.
        assert_eq!(
            failure_of(f.free_stateid(r2.stateid)),
            (op::FREE_STATEID, status::NFS4ERR_LOCKS_HELD)
        );
        assert_eq!(
            status_of(f.free_stateid(made_up)),
            status::NFS4ERR_BAD_STATEID
        );

        // DELEGRETURN of anything: BAD_STATEID (no delegations were granted).
        assert_eq!(
            failure_of(f.call(&[Op::PutFh(fh.clone()), Op::DelegReturn(r2.stateid)])),
            (op::DELEGRETURN, status::NFS4ERR_BAD_STATEID)
        );
        // RELEASE_LOCKOWNER is an NFSv4.0 operation: NOTSUPP in 4.1.
        let mut args = Vec::new();
        args.extend_from_slice(&f.clientid().to_be_bytes());
        args.extend_from_slice(&4u32.to_be_bytes());
        args.extend_from_slice(b"lown");
        let r = f
            .call_raw(&[Op::Raw {
                opnum: op::RELEASE_LOCKOWNER,
                args,
            }])
            .unwrap();
        assert_eq!(
            r.failure(),
            Some((op::RELEASE_LOCKOWNER, status::NFS4ERR_NOTSUPP))
        );

        // CLOSE: returns the invalid special stateid; closing again is BAD_STATEID and
        // so is any I/O with it.
        let closed = f.close(r2.clone()).unwrap();
        assert_eq!(closed, invalid, "RFC 8881 §18.2.4");
        assert_eq!(status_of(f.close(r2.clone())), status::NFS4ERR_BAD_STATEID);
        assert_eq!(status_of(f.read(&r2, 0, 1)), status::NFS4ERR_BAD_STATEID);
        assert_eq!(
            f.test_stateids(&[r2.stateid]).unwrap(),
            vec![status::NFS4ERR_BAD_STATEID]
        );
        // CLOSE with the old seqid of an open: OLD_STATEID, and the open stays.
        let o1 = f.open(&root, b"sid2", share::ACCESS_READ, 0).unwrap();
        let o2 = f.open(&root, b"sid2", share::ACCESS_READ, 0).unwrap();
        assert_eq!(status_of(f.close(o1)), status::NFS4ERR_OLD_STATEID);
        f.close(o2).unwrap();
        // CLOSE on the wrong file: BAD_STATEID.
        let o = f.open(&root, b"sid2", share::ACCESS_READ, 0).unwrap();
        let wrong = OpenFile {
            fh: fh.clone(),
            stateid: o.stateid,
        };
        assert_eq!(status_of(f.close(wrong)), status::NFS4ERR_BAD_STATEID);
        f.close(o).unwrap();
        // OPENMODE: WRITE with a read-only open.
        let ro = f.open(&root, b"sid", share::ACCESS_READ, 0).unwrap();
        assert_eq!(
            failure_of(f.write(&ro, 0, b"x", stable::FILE_SYNC)),
            (op::WRITE, status::NFS4ERR_OPENMODE)
        );
        f.close(ro).unwrap();
    });
}

#[test]
fn locks_between_two_clients() {
    for_each_backend(|env| {
        let a = env.files();
        let b = env.files();
        let (root, fh) = new_file(&a, b"locked", &[0u8; 4096]);
        let oa = a.open(&root, b"locked", share::ACCESS_BOTH, 0).unwrap();
        let ob = b.open(&root, b"locked", share::ACCESS_BOTH, 0).unwrap();

        // A write-locks [0, 100).
        let la = a
            .lock_new(&oa, b"lock-owner-A", locktype::WRITE, 0, 100)
            .unwrap()
            .unwrap();
        assert_eq!(la.seqid, 1);
        assert_ne!(la.other, oa.stateid.other);
        // B's read lock inside it: DENIED with A's whole range, type and owner.
        let denied = b
            .lock_new(&ob, b"lock-owner-B", locktype::READ, 50, 10)
            .unwrap()
            .unwrap_err();
        assert_eq!((denied.offset, denied.length), (0, 100));
        assert_eq!(denied.locktype, locktype::WRITE);
        assert_eq!(denied.clientid, a.clientid());
        assert_eq!(denied.owner, b"lock-owner-A");
        // LOCKT says the same; A's own owner has no conflict.
        let t = b
            .lockt(&fh, b"lock-owner-B", locktype::WRITE, 99, 1)
            .unwrap()
            .unwrap();
        assert_eq!((t.offset, t.length, t.clientid), (0, 100, a.clientid()));
        assert!(
            a.lockt(&fh, b"lock-owner-A", locktype::WRITE, 0, 200)
                .unwrap()
                .is_none()
        );
        // Just outside the range: free.
        assert!(
            b.lockt(&fh, b"lock-owner-B", locktype::WRITE, 100, 10)
                .unwrap()
                .is_none()
        );
        // LOCKT with length 0: INVAL.
        assert_eq!(
            status_of(b.lockt(&fh, b"lock-owner-B", locktype::WRITE, 0, 0)),
            status::NFS4ERR_INVAL
        );

        // Partial unlock [50, 60): A keeps [0,50) and [60,100).
        let la = a.locku(&fh, la, locktype::WRITE, 50, 10).unwrap();
        assert_eq!(la.seqid, 2);
        assert!(
            b.lockt(&fh, b"lock-owner-B", locktype::WRITE, 50, 10)
                .unwrap()
                .is_none()
        );
        let t = b
            .lockt(&fh, b"lock-owner-B", locktype::READ, 40, 20)
            .unwrap()
            .unwrap();
        assert_eq!((t.offset, t.length), (0, 50));
        let t = b
            .lockt(&fh, b"lock-owner-B", locktype::READ, 55, 10)
            .unwrap()
            .unwrap();
        assert_eq!((t.offset, t.length), (60, 40));
        // B takes the hole.
        let lb = b
            .lock_new(&ob, b"lock-owner-B", locktype::WRITE, 50, 10)
            .unwrap()
            .unwrap();
        // A cannot extend over it.
        let d = a
            .lock_existing(&fh, la, locktype::WRITE, 0, 100)
            .unwrap()
            .unwrap_err();
        assert_eq!((d.offset, d.length, d.clientid), (50, 10, b.clientid()));
        assert_eq!(d.owner, b"lock-owner-B");

        // READ locks are shared; a WRITE lock over a READ lock is not.
        let ra = a
            .lock_existing(&fh, la, locktype::READ, 1000, 100)
            .unwrap()
            .unwrap();
        assert_eq!(ra.other, la.other);
        assert_eq!(ra.seqid, la.seqid + 1);
        let rb = b
            .lock_existing(&fh, lb, locktype::READ, 1050, 10)
            .unwrap()
            .unwrap();
        let d = b
            .lock_existing(&fh, rb, locktype::WRITE, 1090, 20)
            .unwrap()
            .unwrap_err();
        assert_eq!(
            (d.offset, d.length, d.locktype),
            (1000, 100, locktype::READ)
        );
        // A lock to EOF (all-ones length) conflicts with anything later.
        let (_, _) = (ra, rb);
        let t = a
            .lockt(&fh, b"lock-owner-A", locktype::WRITE, 1055, u64::MAX)
            .unwrap()
            .unwrap();
        assert_eq!((t.offset, t.length), (1050, 10));

        // The holder may still do I/O in its range; locks are advisory for others'
        // stateids (no mandatory locking).
        a.write(&oa, 0, b"A", stable::FILE_SYNC).unwrap();

        // LOCK errors: length 0 and overflowing ranges: INVAL; reclaim: NO_GRACE.
        assert_eq!(
            status_of(a.lock_existing(&fh, ra, locktype::WRITE, 0, 0)),
            status::NFS4ERR_INVAL
        );
        assert_eq!(
            status_of(a.lock_existing(&fh, ra, locktype::WRITE, u64::MAX - 1, 10)),
            status::NFS4ERR_INVAL
        );
        let r = a
            .call_raw(&[
                Op::PutFh(fh.clone()),
                Op::Lock {
                    locktype: locktype::WRITE,
                    reclaim: true,
                    offset: 5000,
                    length: 1,
                    locker: ringnfs::client::Locker::Existing {
                        stateid: ra,
                        seqid: 0,
                    },
                },
            ])
            .unwrap();
        assert_eq!(r.failure(), Some((op::LOCK, status::NFS4ERR_NO_GRACE)));
        // Old lock seqid: OLD_STATEID; another client's lock stateid: BAD_STATEID.
        assert_eq!(
            status_of(a.lock_existing(&fh, la, locktype::WRITE, 5000, 1)),
            status::NFS4ERR_OLD_STATEID
        );
        assert_eq!(
            status_of(b.lock_existing(&fh, ra, locktype::WRITE, 5000, 1)),
            status::NFS4ERR_BAD_STATEID
        );
        // CLOSE while holding locks: LOCKS_HELD; FREE_STATEID of the lock too.
        assert_eq!(
            failure_of(a.close(oa.clone())),
            (op::CLOSE, status::NFS4ERR_LOCKS_HELD)
        );
        assert_eq!(status_of(a.free_stateid(ra)), status::NFS4ERR_LOCKS_HELD);
        // Unlock everything: then the lock stateid can be freed and the file closed.
        let ra = a.locku(&fh, ra, locktype::WRITE, 0, u64::MAX).unwrap();
        assert_eq!(a.test_stateids(&[ra]).unwrap(), vec![status::NFS4_OK]);
        a.free_stateid(ra).unwrap();
        assert_eq!(
            a.test_stateids(&[ra]).unwrap(),
            vec![status::NFS4ERR_BAD_STATEID]
        );
        a.close(oa).unwrap();
        // A's locks are gone: B may lock everything.
        assert!(
            b.lockt(&fh, b"lock-owner-B", locktype::WRITE, 0, u64::MAX)
                .unwrap()
                .is_none()
        );
        let lb = b
            .lock_existing(&fh, rb, locktype::WRITE, 0, u64::MAX)
            .unwrap()
            .unwrap();
        b.locku(&fh, lb, locktype::WRITE, 0, u64::MAX).unwrap();
        b.close(ob).unwrap();
    });
}

#[test]
fn lock_needs_a_fitting_open() {
    for_each_backend(|env| {
        let f = env.files();
        let (root, fh) = new_file(&f, b"lk", b"x");
        let ro = f.open(&root, b"lk", share::ACCESS_READ, 0).unwrap();
        // A WRITE lock under a read-only open: OPENMODE; a READ lock is fine.
        assert_eq!(
            failure_of(f.lock_new(&ro, b"lo", locktype::WRITE, 0, 1)),
            (op::LOCK, status::NFS4ERR_OPENMODE)
        );
        let l = f
            .lock_new(&ro, b"lo", locktype::READ, 0, 1)
            .unwrap()
            .unwrap();
        // A lock stateid works for READ.
        assert_eq!(f.read_at(&fh, l, 0, 1).unwrap().0, b"x");
        // An invalid lock type: INVAL (or BADXDR).
        let st = status_of(f.lock_new(&ro, b"lo2", 9, 0, 1));
        assert!(
            st == status::NFS4ERR_INVAL || st == status::NFS4ERR_BADXDR,
            "{st}"
        );
        // A made-up open stateid for a new lock owner: BAD_STATEID.
        let mut other = ro.stateid.other;
        other[10] ^= 0x40;
        let fake = OpenFile {
            fh: fh.clone(),
            stateid: Stateid { seqid: 1, other },
        };
        assert_eq!(
            status_of(f.lock_new(&fake, b"lo3", locktype::READ, 0, 1)),
            status::NFS4ERR_BAD_STATEID
        );
        // LOCKU of a range never locked is fine (POSIX); of the wrong file: BAD_STATEID.
        let l = f.locku(&fh, l, locktype::READ, 100, 10).unwrap();
        let dir_lock = f.locku(&root, l, locktype::READ, 0, 1);
        assert_eq!(status_of(dir_lock), status::NFS4ERR_BAD_STATEID);
        let l = f.locku(&fh, l, locktype::READ, 0, 1).unwrap();
        f.free_stateid(l).unwrap();
        f.close(ro).unwrap();
    });
}

/// RFC 8881 §18.16.3: a client that states a delegation wish in OPEN's share_access is
/// told why it got none (OPEN_DELEGATE_NONE_EXT); one that did not gets
/// OPEN_DELEGATE_NONE.
#[test]
fn open_answers_delegation_wishes_with_a_reason() {
    use ringnfs::client::Delegation;
    const WANT_READ: u32 = 0x0100;
    const WANT_WRITE: u32 = 0x0200;
    const WANT_ANY: u32 = 0x0300;
    const WANT_NO_DELEG: u32 = 0x0400;
    const WANT_CANCEL: u32 = 0x0500;
    const SIGNAL_WHEN_AVAIL: u32 = 0x1_0000;
    const WND4_NOT_WANTED: u32 = 0;
    const WND4_CONTENTION: u32 = 1;
    const WND4_RESOURCE: u32 = 2;
    const WND4_CANCELLED: u32 = 7;
    for_each_backend(|env| {
        let a = env.files();
        let b = env.files(); // another client id
        let (root, _) = new_file(&a, b"wished", b"data");
        let open = |f: &Files, access: u32| {
            let args = f.open_args(
                access,
                share::DENY_NONE,
                OpenHow::NoCreate,
                OpenClaim::Null(b"wished".to_vec()),
            );
            f.open_with(&root, args)
        };
        let delegation = |f: &Files, access: u32| {
            let (of, res) = open(f, access).unwrap();
            f.close(of).unwrap();
            res.delegation
        };
        let ext = |why: u32, flag: Option<bool>| Delegation::NoneExt { why, flag };
        assert_eq!(delegation(&a, share::ACCESS_READ), Delegation::None);
        assert_eq!(
            delegation(&a, share::ACCESS_READ | WANT_NO_DELEG),
            ext(WND4_NOT_WANTED, None)
        );
        assert_eq!(
            delegation(&a, share::ACCESS_READ | WANT_CANCEL),
            ext(WND4_CANCELLED, None)
        );
        for want in [WANT_READ, WANT_WRITE, WANT_ANY, SIGNAL_WHEN_AVAIL] {
            assert_eq!(
                delegation(&a, share::ACCESS_BOTH | want),
                ext(WND4_RESOURCE, Some(false)),
                "want {want:#x} with no other opener"
            );
        }
        // Another client holds the file open for writing: that is contention.
        let (ob, _) = open(&b, share::ACCESS_WRITE).unwrap();
        assert_eq!(
            delegation(&a, share::ACCESS_READ | WANT_READ),
            ext(WND4_CONTENTION, Some(false))
        );
        b.close(ob).unwrap();
        // Another client reading: contention for a write delegation only.
        let (ob, _) = open(&b, share::ACCESS_READ).unwrap();
        assert_eq!(
            delegation(&a, share::ACCESS_BOTH | WANT_WRITE),
            ext(WND4_CONTENTION, Some(false))
        );
        assert_eq!(
            delegation(&a, share::ACCESS_READ | WANT_READ),
            ext(WND4_RESOURCE, Some(false))
        );
        b.close(ob).unwrap();
        // A wish the RFC does not define.
        assert_eq!(
            failure_of(open(&a, share::ACCESS_READ | 0x0600)),
            (op::OPEN, status::NFS4ERR_INVAL)
        );
    });
}
