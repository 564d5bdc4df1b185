//! File operations on top of a [`Session`]: one COMPOUND per call (PUTFH + the op +
//! whatever it needs), spread round robin over the session's connections unless pinned
//! to one. Errors are `ClientError::Nfs { opnum, status }` of the op the server stopped
//! at.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::compound::{CompoundReply, FileAttrs, LockDenied, OpenRes, ReaddirRes, WriteRes};
use super::error::ClientError;
use super::ops::wire::{
    CloseArgs, CommitArgs, LockuArgs, OpenDowngradeArgs, ReadArgs, ReaddirArgs,
};
use super::ops::{
    CreateType, Fattr, Locker, Op, OpenArgs, OpenClaim, OpenHow, Stateid, Verifier, share, stable,
};
use super::session::Session;
use ringnfs_proto::nfs4::consts::op;

/// A file handle as the server sent it.
pub type Fh = Vec<u8>;

/// Largest READ / WRITE payload the convenience calls use (the server's maxread).
pub const CHUNK: usize = 1 << 20;

/// An open file: its handle and the open stateid (updated by upgrades/downgrades).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenFile {
    pub fh: Fh,
    pub stateid: Stateid,
}

/// File operations for one client (its session's client id), with one open owner.
#[derive(Debug)]
pub struct Files {
    session: Arc<Session>,
    /// Some: every call goes on this connection.
    pinned: Option<usize>,
    next: AtomicUsize,
    owner: Vec<u8>,
}

impl Files {
    pub fn new(session: Arc<Session>) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let owner = format!(
            "files-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
        .into_bytes();
        Files {
            session,
            pinned: None,
            next: AtomicUsize::new(0),
            owner,
        }
    }

    /// Every call on connection `conn` (same open owner as `self`).
    pub fn pinned(&self, conn: usize) -> Files {
        Files {
            session: self.session.clone(),
            pinned: Some(conn),
            next: AtomicUsize::new(0),
            owner: self.owner.clone(),
        }
    }

    /// A different open owner on the same session.
    pub fn with_owner(&self, owner: &[u8]) -> Files {
        Files {
            session: self.session.clone(),
            pinned: self.pinned,
            next: AtomicUsize::new(0),
            owner: owner.to_vec(),
        }
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }
    pub fn clientid(&self) -> u64 {
        self.session.clientid()
    }
    pub fn owner(&self) -> &[u8] {
        &self.owner
    }

    fn conn_index(&self) -> usize {
        match self.pinned {
            Some(i) => i,
            None => {
                let n = self.session.connection_count().max(1);
                self.next.fetch_add(1, Ordering::Relaxed) % n
            }
        }
    }

    /// SEQUENCE + `ops`; the reply whatever its status.
    pub fn call_raw(&self, ops: &[Op]) -> Result<CompoundReply, ClientError> {
        self.session.call(self.conn_index(), ops, false)
    }

    /// SEQUENCE + `ops`; Err with the first failed op's status.
    pub fn call(&self, ops: &[Op]) -> Result<CompoundReply, ClientError> {
        let r = self.call_raw(ops)?;
        r.check()?;
        Ok(r)
    }

    /// Like `call`, but a failure of the last op (`last`, e.g. LOCK's DENIED with its
    /// body) is left in the reply for the caller to decode.
    fn call_to(&self, ops: &[Op], last: u32) -> Result<CompoundReply, ClientError> {
        let r = self.call_raw(ops)?;
        if let Some((opnum, status)) = r.failure()
            && opnum != last
        {
            return Err(ClientError::Nfs { opnum, status });
        }
        Ok(r)
    }

    pub fn root_fh(&self) -> Result<Fh, ClientError> {
        self.call(&[Op::PutRootFh, Op::GetFh])?.getfh()
    }

    pub fn lookup(&self, dir: &[u8], name: &[u8]) -> Result<Fh, ClientError> {
        self.call(&[
            Op::PutFh(dir.to_vec()),
            Op::Lookup(name.to_vec()),
            Op::GetFh,
        ])?
        .getfh()
    }

    /// LOOKUP each `/`-separated component from the root ("" = the root).
    pub fn lookup_path(&self, path: &str) -> Result<Fh, ClientError> {
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let mut fh = self.root_fh()?;
        // Stay well inside the session's maxoperations.
        for chunk in comps.chunks(8) {
            let mut ops = vec![Op::PutFh(fh)];
            ops.extend(chunk.iter().map(|c| Op::Lookup(c.as_bytes().to_vec())));
            ops.push(Op::GetFh);
            fh = self.call(&ops)?.getfh()?;
        }
        Ok(fh)
    }

    pub fn lookupp(&self, fh: &[u8]) -> Result<Fh, ClientError> {
        self.call(&[Op::PutFh(fh.to_vec()), Op::LookupP, Op::GetFh])?
            .getfh()
    }

    pub fn getattr(&self, fh: &[u8]) -> Result<FileAttrs, ClientError> {
        self.call(&[
            Op::PutFh(fh.to_vec()),
            Op::GetAttr(FileAttrs::REQUEST.to_vec()),
        ])?
        .attrs()
    }

    /// ACCESS: (supported, access).
    pub fn access(&self, fh: &[u8], bits: u32) -> Result<(u32, u32), ClientError> {
        self.call(&[Op::PutFh(fh.to_vec()), Op::Access(bits)])?
            .access()
    }

    /// CREATE of any non-regular type; returns the new object's handle.
    pub fn create_obj(
        &self,
        dir: &[u8],
        name: &[u8],
        kind: CreateType,
        attrs: Fattr,
    ) -> Result<Fh, ClientError> {
        self.call(&[
            Op::PutFh(dir.to_vec()),
            Op::Create {
                kind,
                name: name.to_vec(),
                attrs,
            },
            Op::GetFh,
        ])?
        .getfh()
    }

    pub fn mkdir(&self, dir: &[u8], name: &[u8], mode: u32) -> Result<Fh, ClientError> {
        self.create_obj(dir, name, CreateType::Dir, Fattr::new().mode(mode))
    }

    pub fn symlink(&self, dir: &[u8], name: &[u8], target: &[u8]) -> Result<Fh, ClientError> {
        self.create_obj(
            dir,
            name,
            CreateType::Symlink(target.to_vec()),
            Fattr::new(),
        )
    }

    pub fn readlink(&self, fh: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.call(&[Op::PutFh(fh.to_vec()), Op::Readlink])?
            .readlink()
    }

    /// OPEN4args for this client and owner.
    pub fn open_args(&self, access: u32, deny: u32, how: OpenHow, claim: OpenClaim) -> OpenArgs {
        OpenArgs {
            seqid: 0,
            share_access: access,
            share_deny: deny,
            clientid: self.clientid(),
            owner: self.owner.clone(),
            how,
            claim,
        }
    }

    /// PUTFH `fh`; OPEN; GETFH. Returns the opened file and the full OPEN result.
    pub fn open_with(&self, fh: &[u8], args: OpenArgs) -> Result<(OpenFile, OpenRes), ClientError> {
        let r = self.call(&[Op::PutFh(fh.to_vec()), Op::Open(args), Op::GetFh])?;
        let res = r.open()?;
        Ok((
            OpenFile {
                fh: r.getfh()?,
                stateid: res.stateid,
            },
            res,
        ))
    }

    /// Create (UNCHECKED, CLAIM_NULL) and open for read and write.
    pub fn create(
        &self,
        dir: &[u8],
        name: &[u8],
        mode: u32,
    ) -> Result<(Fh, OpenFile), ClientError> {
        self.create_how(dir, name, OpenHow::Unchecked(Fattr::new().mode(mode)))
    }

    /// Create (GUARDED: EXIST if it exists) and open for read and write.
    pub fn create_new(
        &self,
        dir: &[u8],
        name: &[u8],
        mode: u32,
    ) -> Result<(Fh, OpenFile), ClientError> {
        self.create_how(dir, name, OpenHow::Guarded(Fattr::new().mode(mode)))
    }

    fn create_how(
        &self,
        dir: &[u8],
        name: &[u8],
        how: OpenHow,
    ) -> Result<(Fh, OpenFile), ClientError> {
        let args = self.open_args(
            share::ACCESS_BOTH,
            share::DENY_NONE,
            how,
            OpenClaim::Null(name.to_vec()),
        );
        let (f, _) = self.open_with(dir, args)?;
        Ok((f.fh.clone(), f))
    }

    /// Open an existing file by name (CLAIM_NULL, no create).
    pub fn open(
        &self,
        dir: &[u8],
        name: &[u8],
        access: u32,
        deny: u32,
    ) -> Result<OpenFile, ClientError> {
        let args = self.open_args(
            access,
            deny,
            OpenHow::NoCreate,
            OpenClaim::Null(name.to_vec()),
        );
        Ok(self.open_with(dir, args)?.0)
    }

    /// Open a file by handle (CLAIM_FH).
    pub fn open_fh(&self, fh: &[u8], access: u32, deny: u32) -> Result<OpenFile, ClientError> {
        let args = self.open_args(access, deny, OpenHow::NoCreate, OpenClaim::Fh);
        Ok(self.open_with(fh, args)?.0)
    }

    pub fn open_downgrade(
        &self,
        f: &mut OpenFile,
        access: u32,
        deny: u32,
    ) -> Result<(), ClientError> {
        let r = self.call(&[
            Op::PutFh(f.fh.clone()),
            Op::OpenDowngrade(OpenDowngradeArgs {
                stateid: f.stateid,
                seqid: 0,
                share_access: access,
                share_deny: deny,
            }),
        ])?;
        f.stateid = r.open_downgrade()?;
        Ok(())
    }

    pub fn close(&self, f: OpenFile) -> Result<Stateid, ClientError> {
        self.call(&[
            Op::PutFh(f.fh),
            Op::Close(CloseArgs {
                seqid: 0,
                stateid: f.stateid,
            }),
        ])?
        .close()
    }

    pub fn read_at(
        &self,
        fh: &[u8],
        stateid: Stateid,
        offset: u64,
        count: u32,
    ) -> Result<(Vec<u8>, bool), ClientError> {
        let r = self
            .call(&[
                Op::PutFh(fh.to_vec()),
                Op::Read(ReadArgs {
                    stateid,
                    offset,
                    count,
                }),
            ])?
            .read()?;
        Ok((r.data, r.eof))
    }

    pub fn read(
        &self,
        f: &OpenFile,
        offset: u64,
        count: u32,
    ) -> Result<(Vec<u8>, bool), ClientError> {
        self.read_at(&f.fh, f.stateid, offset, count)
    }

    pub fn write_at(
        &self,
        fh: &[u8],
        stateid: Stateid,
        offset: u64,
        data: &[u8],
        how: u32,
    ) -> Result<WriteRes, ClientError> {
        self.call(&[
            Op::PutFh(fh.to_vec()),
            Op::Write {
                stateid,
                offset,
                stable: how,
                data: data.to_vec(),
            },
        ])?
        .write()
    }

    /// WRITE: (count, verifier).
    pub fn write(
        &self,
        f: &OpenFile,
        offset: u64,
        data: &[u8],
        how: u32,
    ) -> Result<(u32, Verifier), ClientError> {
        let w = self.write_at(&f.fh, f.stateid, offset, data, how)?;
        Ok((w.count, w.verifier))
    }

    pub fn commit(&self, fh: &[u8], offset: u64, count: u32) -> Result<Verifier, ClientError> {
        self.call(&[
            Op::PutFh(fh.to_vec()),
            Op::Commit(CommitArgs { offset, count }),
        ])?
        .commit()
    }

    pub fn remove(&self, dir: &[u8], name: &[u8]) -> Result<(), ClientError> {
        self.call(&[Op::PutFh(dir.to_vec()), Op::Remove(name.to_vec())])?
            .remove()
            .map(|_| ())
    }

    /// PUTFH src; SAVEFH; PUTFH dst; RENAME.
    pub fn rename(
        &self,
        src_dir: &[u8],
        old: &[u8],
        dst_dir: &[u8],
        new: &[u8],
    ) -> Result<(), ClientError> {
        self.call(&[
            Op::PutFh(src_dir.to_vec()),
            Op::SaveFh,
            Op::PutFh(dst_dir.to_vec()),
            Op::Rename {
                old: old.to_vec(),
                new: new.to_vec(),
            },
        ])?
        .rename()
        .map(|_| ())
    }

    /// PUTFH file; SAVEFH; PUTFH dir; LINK.
    pub fn link(&self, file: &[u8], dir: &[u8], name: &[u8]) -> Result<(), ClientError> {
        self.call(&[
            Op::PutFh(file.to_vec()),
            Op::SaveFh,
            Op::PutFh(dir.to_vec()),
            Op::Link(name.to_vec()),
        ])?
        .link()
        .map(|_| ())
    }

    /// One READDIR page.
    pub fn readdir_page(
        &self,
        dir: &[u8],
        cookie: u64,
        verifier: Verifier,
        maxcount: u32,
        attrs: &[u32],
    ) -> Result<ReaddirRes, ClientError> {
        self.call(&[
            Op::PutFh(dir.to_vec()),
            Op::Readdir(ReaddirArgs {
                cookie,
                cookieverf: verifier,
                dircount: maxcount,
                maxcount,
                attr_request: attrs.to_vec(),
            }),
        ])?
        .readdir()
    }

    /// Every entry as (name, cookie), paging with a 1 KiB maxcount.
    pub fn readdir_all(&self, dir: &[u8]) -> Result<Vec<(Vec<u8>, u64)>, ClientError> {
        let mut out = Vec::new();
        let (mut cookie, mut verf) = (0u64, [0u8; 8]);
        loop {
            let page = self.readdir_page(dir, cookie, verf, 1024, &[])?;
            verf = page.cookieverf;
            for e in &page.entries {
                out.push((e.name.clone(), e.cookie));
            }
            match page.entries.last() {
                _ if page.eof => return Ok(out),
                Some(e) => cookie = e.cookie,
                None => {
                    return Err(ClientError::BadReply(
                        "READDIR: no entries and no eof".into(),
                    ));
                }
            }
        }
    }

    /// SETATTR; returns attrsset.
    pub fn setattr(
        &self,
        fh: &[u8],
        attrs: Fattr,
        stateid: Stateid,
    ) -> Result<Vec<u32>, ClientError> {
        let r = self.call(&[Op::PutFh(fh.to_vec()), Op::SetAttr { stateid, attrs }])?;
        Ok(r.setattr()?.1)
    }

    /// LOCK with a new lock owner derived from `f`'s open stateid.
    pub fn lock_new(
        &self,
        f: &OpenFile,
        lock_owner: &[u8],
        locktype: u32,
        offset: u64,
        length: u64,
    ) -> Result<Result<Stateid, LockDenied>, ClientError> {
        self.lock_with(
            &f.fh,
            locktype,
            offset,
            length,
            Locker::New {
                open_seqid: 0,
                open_stateid: f.stateid,
                lock_seqid: 0,
                clientid: self.clientid(),
                owner: lock_owner.to_vec(),
            },
        )
    }

    /// LOCK with an existing lock stateid.
    pub fn lock_existing(
        &self,
        fh: &[u8],
        lock: Stateid,
        locktype: u32,
        offset: u64,
        length: u64,
    ) -> Result<Result<Stateid, LockDenied>, ClientError> {
        self.lock_with(
            fh,
            locktype,
            offset,
            length,
            Locker::Existing {
                stateid: lock,
                seqid: 0,
            },
        )
    }

    fn lock_with(
        &self,
        fh: &[u8],
        locktype: u32,
        offset: u64,
        length: u64,
        locker: Locker,
    ) -> Result<Result<Stateid, LockDenied>, ClientError> {
        let ops = [
            Op::PutFh(fh.to_vec()),
            Op::Lock {
                locktype,
                reclaim: false,
                offset,
                length,
                locker,
            },
        ];
        self.call_to(&ops, op::LOCK)?.lock()
    }

    /// LOCKT for `lock_owner` of this client: None when the lock could be granted.
    pub fn lockt(
        &self,
        fh: &[u8],
        lock_owner: &[u8],
        locktype: u32,
        offset: u64,
        length: u64,
    ) -> Result<Option<LockDenied>, ClientError> {
        let ops = [
            Op::PutFh(fh.to_vec()),
            Op::LockT {
                locktype,
                offset,
                length,
                clientid: self.clientid(),
                owner: lock_owner.to_vec(),
            },
        ];
        self.call_to(&ops, op::LOCKT)?.lockt()
    }

    pub fn locku(
        &self,
        fh: &[u8],
        lock: Stateid,
        locktype: u32,
        offset: u64,
        length: u64,
    ) -> Result<Stateid, ClientError> {
        self.call(&[
            Op::PutFh(fh.to_vec()),
            Op::LockU(LockuArgs {
                locktype,
                seqid: 0,
                stateid: lock,
                offset,
                length,
            }),
        ])?
        .locku()
    }

    /// TEST_STATEID: one status per stateid.
    pub fn test_stateids(
        &self,
        ids: &[Stateid],
    ) -> Result<Vec<ringnfs_proto::nfs4::consts::NfsStatus>, ClientError> {
        self.call(&[Op::TestStateid(ids.to_vec())])?.test_stateid()
    }

    pub fn free_stateid(&self, id: Stateid) -> Result<(), ClientError> {
        self.call(&[Op::FreeStateid(id)]).map(|_| ())
    }

    /// Create (or truncate) `name` and write `data` in 1 MiB UNSTABLE chunks, spread
    /// over the connections, then COMMIT and CLOSE. Returns the file's handle.
    pub fn write_file(&self, dir: &[u8], name: &[u8], data: &[u8]) -> Result<Fh, ClientError> {
        let args = self.open_args(
            share::ACCESS_BOTH,
            share::DENY_NONE,
            OpenHow::Unchecked(Fattr::new().size(0).mode(0o644)),
            OpenClaim::Null(name.to_vec()),
        );
        let (f, _) = self.open_with(dir, args)?;
        let mut verf = None;
        for (i, chunk) in data.chunks(CHUNK).enumerate() {
            let off = (i * CHUNK) as u64;
            let mut done = 0usize;
            while done < chunk.len() {
                let w = self.write_at(
                    &f.fh,
                    f.stateid,
                    off + done as u64,
                    &chunk[done..],
                    stable::UNSTABLE,
                )?;
                if w.count == 0 {
                    return Err(ClientError::BadReply("WRITE wrote nothing".into()));
                }
                done += w.count as usize;
                match verf {
                    None => verf = Some(w.verifier),
                    Some(v) if v != w.verifier => {
                        return Err(ClientError::BadReply("write verifier changed".into()));
                    }
                    _ => {}
                }
            }
        }
        let c = self.commit(&f.fh, 0, 0)?;
        if verf.is_some_and(|v| v != c) {
            return Err(ClientError::BadReply("commit verifier differs".into()));
        }
        let fh = f.fh.clone();
        self.close(f)?;
        Ok(fh)
    }

    /// Read a whole file by handle with an open stateid, in 1 MiB READs.
    pub fn read_all(&self, f: &OpenFile) -> Result<Vec<u8>, ClientError> {
        let mut out = Vec::new();
        loop {
            let (data, eof) = self.read(f, out.len() as u64, CHUNK as u32)?;
            out.extend_from_slice(&data);
            if eof {
                return Ok(out);
            }
            if data.is_empty() {
                return Err(ClientError::BadReply("READ: no data and no eof".into()));
            }
        }
    }

    /// Open `name` for reading, read it whole, close it.
    pub fn read_file(&self, dir: &[u8], name: &[u8]) -> Result<Vec<u8>, ClientError> {
        let f = self.open(dir, name, share::ACCESS_READ, share::DENY_NONE)?;
        let data = self.read_all(&f)?;
        self.close(f)?;
        Ok(data)
    }
}
