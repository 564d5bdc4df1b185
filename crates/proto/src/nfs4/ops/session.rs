//! Client IDs and sessions (RFC 8881 §18.35–§18.37, §18.46, §18.50, §18.51): EXCHANGE_ID,
//! CREATE_SESSION, BIND_CONN_TO_SESSION, DESTROY_SESSION, DESTROY_CLIENTID,
//! RECLAIM_COMPLETE and SEQUENCE.

use super::{MAX_ARRAY, Xdr, sessionid};
use crate::ids::SessionId;
use crate::nfs4::consts::{NFS4_OPAQUE_LIMIT, NFS4_SESSIONID_SIZE, NFS4_VERIFIER_SIZE, sp4};
use crate::nfs4::types::{
    ChannelAttrs, decode_bitmap, decode_channel_attrs, encode_bitmap, encode_channel_attrs,
};
use crate::rpc::AuthSys;
use crate::rpc::auth::{
    AUTH_NONE, AUTH_SYS, AUTH_SYS_MAX_GIDS, AUTH_SYS_MAX_MACHINE_NAME, RPCSEC_GSS,
};
use crate::xdr::{XdrDecoder, XdrEncoder, XdrError};

/// Longest GSS handle accepted in callback_sec_parms4 and ssv_prot_info4.
const MAX_GSS_HANDLE: usize = 1024;

/// nfstime4 as (seconds, nanoseconds).
fn nfstime(d: &mut XdrDecoder<'_>) -> Result<(i64, u32), XdrError> {
    Ok((d.i64()?, d.u32()?))
}

// ---- SEQUENCE ---------------------------------------------------------------------------

/// SEQUENCE4args.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceArgs {
    pub sessionid: SessionId,
    pub sequenceid: u32,
    pub slotid: u32,
    pub highest_slotid: u32,
    pub cachethis: bool,
}

impl Xdr<'_> for SequenceArgs {
    #[inline]
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(SequenceArgs {
            sessionid: sessionid(d)?,
            sequenceid: d.u32()?,
            slotid: d.u32()?,
            highest_slotid: d.u32()?,
            cachethis: d.bool()?,
        })
    }

    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed(&self.sessionid.0);
        out.put_u32(self.sequenceid);
        out.put_u32(self.slotid);
        out.put_u32(self.highest_slotid);
        out.put_bool(self.cachethis);
    }
}

/// SEQUENCE4resok.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceResOk {
    pub sessionid: SessionId,
    pub sequenceid: u32,
    pub slotid: u32,
    pub highest_slotid: u32,
    pub target_highest_slotid: u32,
    pub status_flags: u32,
}

impl SequenceResOk {
    /// Encoded size: the session id and five words.
    pub const LEN: usize = NFS4_SESSIONID_SIZE + 5 * 4;
}

impl Xdr<'_> for SequenceResOk {
    #[inline]
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(SequenceResOk {
            sessionid: sessionid(d)?,
            sequenceid: d.u32()?,
            slotid: d.u32()?,
            highest_slotid: d.u32()?,
            target_highest_slotid: d.u32()?,
            status_flags: d.u32()?,
        })
    }

    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed(&self.sessionid.0);
        out.put_u32(self.sequenceid);
        out.put_u32(self.slotid);
        out.put_u32(self.highest_slotid);
        out.put_u32(self.target_highest_slotid);
        out.put_u32(self.status_flags);
    }
}

// ---- EXCHANGE_ID ------------------------------------------------------------------------

/// nfs_impl_id4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImplId<'a> {
    pub domain: &'a [u8],
    pub name: &'a [u8],
    /// nfstime4: seconds, nanoseconds.
    pub date: (i64, u32),
}

/// nfs_impl_id4<1>: absent or one.
fn decode_impl_id<'a>(d: &mut XdrDecoder<'a>) -> Result<Option<ImplId<'a>>, XdrError> {
    if d.array_len(1, 4)? == 0 {
        return Ok(None);
    }
    Ok(Some(ImplId {
        domain: d.opaque(NFS4_OPAQUE_LIMIT)?,
        name: d.opaque(NFS4_OPAQUE_LIMIT)?,
        date: nfstime(d)?,
    }))
}

fn encode_impl_id(out: &mut Vec<u8>, id: &Option<ImplId<'_>>) {
    match id {
        None => out.put_u32(0),
        Some(i) => {
            out.put_u32(1);
            out.put_opaque(i.domain);
            out.put_opaque(i.name);
            out.put_i64(i.date.0);
            out.put_u32(i.date.1);
        }
    }
}

/// state_protect_ops4: the ops the client wants enforced / allowed under protection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateProtectOps {
    pub must_enforce: Vec<u32>,
    pub must_allow: Vec<u32>,
}

impl StateProtectOps {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(StateProtectOps {
            must_enforce: decode_bitmap(d)?,
            must_allow: decode_bitmap(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        encode_bitmap(out, &self.must_enforce);
        encode_bitmap(out, &self.must_allow);
    }
}

/// sec_oid4<>: GSS mechanism OIDs.
fn decode_oids<'a>(d: &mut XdrDecoder<'a>) -> Result<Vec<&'a [u8]>, XdrError> {
    let n = d.array_len(MAX_ARRAY, 4)?;
    (0..n).map(|_| d.opaque(NFS4_OPAQUE_LIMIT)).collect()
}

fn encode_opaques(out: &mut Vec<u8>, items: &[&[u8]]) {
    out.put_u32(items.len() as u32);
    for i in items {
        out.put_opaque(i);
    }
}

/// state_protect4_a.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StateProtectArgs<'a> {
    #[default]
    None,
    MachCred(StateProtectOps),
    /// ssv_sp_parms4.
    Ssv {
        ops: StateProtectOps,
        hash_algs: Vec<&'a [u8]>,
        encr_algs: Vec<&'a [u8]>,
        window: u32,
        num_gss_handles: u32,
    },
}

impl StateProtectArgs<'_> {
    /// state_protect_how4.
    pub fn how(&self) -> u32 {
        match self {
            StateProtectArgs::None => sp4::NONE,
            StateProtectArgs::MachCred(_) => sp4::MACH_CRED,
            StateProtectArgs::Ssv { .. } => sp4::SSV,
        }
    }
}

/// EXCHANGE_ID4args.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeIdArgs<'a> {
    /// client_owner4: co_verifier and co_ownerid.
    pub verifier: [u8; NFS4_VERIFIER_SIZE],
    pub owner: &'a [u8],
    pub flags: u32,
    pub state_protect: StateProtectArgs<'a>,
    pub impl_id: Option<ImplId<'a>>,
}

impl<'a> Xdr<'a> for ExchangeIdArgs<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        let verifier = d.array()?;
        let owner = d.opaque(NFS4_OPAQUE_LIMIT)?;
        let flags = d.u32()?;
        let state_protect = match d.u32()? {
            sp4::NONE => StateProtectArgs::None,
            sp4::MACH_CRED => StateProtectArgs::MachCred(StateProtectOps::decode(d)?),
            sp4::SSV => StateProtectArgs::Ssv {
                ops: StateProtectOps::decode(d)?,
                hash_algs: decode_oids(d)?,
                encr_algs: decode_oids(d)?,
                window: d.u32()?,
                num_gss_handles: d.u32()?,
            },
            _ => return Err(XdrError::BadValue),
        };
        Ok(ExchangeIdArgs {
            verifier,
            owner,
            flags,
            state_protect,
            impl_id: decode_impl_id(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed(&self.verifier);
        out.put_opaque(self.owner);
        out.put_u32(self.flags);
        out.put_u32(self.state_protect.how());
        match &self.state_protect {
            StateProtectArgs::None => {}
            StateProtectArgs::MachCred(ops) => ops.encode(out),
            StateProtectArgs::Ssv {
                ops,
                hash_algs,
                encr_algs,
                window,
                num_gss_handles,
            } => {
                ops.encode(out);
                encode_opaques(out, hash_algs);
                encode_opaques(out, encr_algs);
                out.put_u32(*window);
                out.put_u32(*num_gss_handles);
            }
        }
        encode_impl_id(out, &self.impl_id);
    }
}

/// state_protect4_r.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StateProtectRes<'a> {
    #[default]
    None,
    MachCred(StateProtectOps),
    /// ssv_prot_info4.
    Ssv {
        ops: StateProtectOps,
        hash_alg: u32,
        encr_alg: u32,
        ssv_len: u32,
        window: u32,
        handles: Vec<&'a [u8]>,
    },
}

impl StateProtectRes<'_> {
    /// state_protect_how4.
    pub fn how(&self) -> u32 {
        match self {
            StateProtectRes::None => sp4::NONE,
            StateProtectRes::MachCred(_) => sp4::MACH_CRED,
            StateProtectRes::Ssv { .. } => sp4::SSV,
        }
    }
}

/// server_owner4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOwner<'a> {
    pub minor_id: u64,
    pub major_id: &'a [u8],
}

/// EXCHANGE_ID4resok.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeIdResOk<'a> {
    pub clientid: u64,
    pub sequenceid: u32,
    pub flags: u32,
    pub state_protect: StateProtectRes<'a>,
    pub server_owner: ServerOwner<'a>,
    pub server_scope: &'a [u8],
    pub impl_id: Option<ImplId<'a>>,
}

impl<'a> Xdr<'a> for ExchangeIdResOk<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        let clientid = d.u64()?;
        let sequenceid = d.u32()?;
        let flags = d.u32()?;
        let state_protect = match d.u32()? {
            sp4::NONE => StateProtectRes::None,
            sp4::MACH_CRED => StateProtectRes::MachCred(StateProtectOps::decode(d)?),
            sp4::SSV => StateProtectRes::Ssv {
                ops: StateProtectOps::decode(d)?,
                hash_alg: d.u32()?,
                encr_alg: d.u32()?,
                ssv_len: d.u32()?,
                window: d.u32()?,
                handles: {
                    let n = d.array_len(MAX_ARRAY, 4)?;
                    (0..n)
                        .map(|_| d.opaque(MAX_GSS_HANDLE))
                        .collect::<Result<_, _>>()?
                },
            },
            _ => return Err(XdrError::BadValue),
        };
        Ok(ExchangeIdResOk {
            clientid,
            sequenceid,
            flags,
            state_protect,
            server_owner: ServerOwner {
                minor_id: d.u64()?,
                major_id: d.opaque(NFS4_OPAQUE_LIMIT)?,
            },
            server_scope: d.opaque(NFS4_OPAQUE_LIMIT)?,
            impl_id: decode_impl_id(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.clientid);
        out.put_u32(self.sequenceid);
        out.put_u32(self.flags);
        out.put_u32(self.state_protect.how());
        match &self.state_protect {
            StateProtectRes::None => {}
            StateProtectRes::MachCred(ops) => ops.encode(out),
            StateProtectRes::Ssv {
                ops,
                hash_alg,
                encr_alg,
                ssv_len,
                window,
                handles,
            } => {
                ops.encode(out);
                out.put_u32(*hash_alg);
                out.put_u32(*encr_alg);
                out.put_u32(*ssv_len);
                out.put_u32(*window);
                encode_opaques(out, handles);
            }
        }
        out.put_u64(self.server_owner.minor_id);
        out.put_opaque(self.server_owner.major_id);
        out.put_opaque(self.server_scope);
        encode_impl_id(out, &self.impl_id);
    }
}

// ---- CREATE_SESSION ---------------------------------------------------------------------

/// callback_sec_parms4: how the server authenticates its callbacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackSecParms<'a> {
    None,
    /// authsys_parms, inline.
    Sys(AuthSys),
    /// gss_cb_handles4.
    Gss {
        service: u32,
        server_handle: &'a [u8],
        client_handle: &'a [u8],
    },
}

impl<'a> CallbackSecParms<'a> {
    /// callback_sec_parms4<> (CREATE_SESSION, BACKCHANNEL_CTL), at most
    /// `MAX_CB_SEC_PARMS` entries.
    pub fn decode_list(d: &mut XdrDecoder<'a>) -> Result<Vec<Self>, XdrError> {
        let n = d.array_len(MAX_CB_SEC_PARMS, 4)?;
        (0..n).map(|_| CallbackSecParms::decode(d)).collect()
    }

    pub fn encode_list(list: &[Self], out: &mut Vec<u8>) {
        out.put_u32(list.len() as u32);
        for p in list {
            p.encode(out);
        }
    }

    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(match d.u32()? {
            AUTH_NONE => CallbackSecParms::None,
            AUTH_SYS => {
                let stamp = d.u32()?;
                let machine_name = d.opaque(AUTH_SYS_MAX_MACHINE_NAME)?.to_vec();
                let uid = d.u32()?;
                let gid = d.u32()?;
                let n = d.array_len(AUTH_SYS_MAX_GIDS, 4)?;
                let gids = (0..n).map(|_| d.u32()).collect::<Result<_, _>>()?;
                CallbackSecParms::Sys(AuthSys {
                    stamp,
                    machine_name,
                    uid,
                    gid,
                    gids,
                })
            }
            RPCSEC_GSS => CallbackSecParms::Gss {
                service: d.u32()?,
                server_handle: d.opaque(MAX_GSS_HANDLE)?,
                client_handle: d.opaque(MAX_GSS_HANDLE)?,
            },
            _ => return Err(XdrError::BadValue),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            CallbackSecParms::None => out.put_u32(AUTH_NONE),
            CallbackSecParms::Sys(s) => {
                out.put_u32(AUTH_SYS);
                s.encode(out);
            }
            CallbackSecParms::Gss {
                service,
                server_handle,
                client_handle,
            } => {
                out.put_u32(RPCSEC_GSS);
                out.put_u32(*service);
                out.put_opaque(server_handle);
                out.put_opaque(client_handle);
            }
        }
    }
}

/// Most callback_sec_parms4 entries accepted in one CREATE_SESSION.
const MAX_CB_SEC_PARMS: usize = 16;

/// CREATE_SESSION4args.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSessionArgs<'a> {
    pub clientid: u64,
    pub sequence: u32,
    pub flags: u32,
    pub fore: ChannelAttrs,
    pub back: ChannelAttrs,
    pub cb_program: u32,
    pub sec_parms: Vec<CallbackSecParms<'a>>,
}

impl<'a> Xdr<'a> for CreateSessionArgs<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(CreateSessionArgs {
            clientid: d.u64()?,
            sequence: d.u32()?,
            flags: d.u32()?,
            fore: decode_channel_attrs(d)?,
            back: decode_channel_attrs(d)?,
            cb_program: d.u32()?,
            sec_parms: CallbackSecParms::decode_list(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.clientid);
        out.put_u32(self.sequence);
        out.put_u32(self.flags);
        encode_channel_attrs(out, &self.fore);
        encode_channel_attrs(out, &self.back);
        out.put_u32(self.cb_program);
        CallbackSecParms::encode_list(&self.sec_parms, out);
    }
}

/// BACKCHANNEL_CTL4args (RFC 8881 §18.33): the session's new callback program and
/// security.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackchannelCtlArgs<'a> {
    pub cb_program: u32,
    pub sec_parms: Vec<CallbackSecParms<'a>>,
}

impl<'a> Xdr<'a> for BackchannelCtlArgs<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(BackchannelCtlArgs {
            cb_program: d.u32()?,
            sec_parms: CallbackSecParms::decode_list(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.cb_program);
        CallbackSecParms::encode_list(&self.sec_parms, out);
    }
}

/// CREATE_SESSION4resok.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateSessionResOk {
    pub sessionid: SessionId,
    pub sequence: u32,
    pub flags: u32,
    pub fore: ChannelAttrs,
    pub back: ChannelAttrs,
}

impl Xdr<'_> for CreateSessionResOk {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(CreateSessionResOk {
            sessionid: sessionid(d)?,
            sequence: d.u32()?,
            flags: d.u32()?,
            fore: decode_channel_attrs(d)?,
            back: decode_channel_attrs(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed(&self.sessionid.0);
        out.put_u32(self.sequence);
        out.put_u32(self.flags);
        encode_channel_attrs(out, &self.fore);
        encode_channel_attrs(out, &self.back);
    }
}

// ---- BIND_CONN_TO_SESSION, DESTROY_*, RECLAIM_COMPLETE ----------------------------------

/// BIND_CONN_TO_SESSION4args. `dir` is the raw channel_dir_from_client4: an undefined
/// value is the handler's NFS4ERR_INVAL, not a decoding error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindConnArgs {
    pub sessionid: SessionId,
    pub dir: u32,
    pub use_rdma: bool,
}

impl Xdr<'_> for BindConnArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(BindConnArgs {
            sessionid: sessionid(d)?,
            dir: d.u32()?,
            use_rdma: d.bool()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed(&self.sessionid.0);
        out.put_u32(self.dir);
        out.put_bool(self.use_rdma);
    }
}

/// BIND_CONN_TO_SESSION4resok: the same three fields, `dir` a channel_dir_from_server4.
pub type BindConnResOk = BindConnArgs;

/// DESTROY_SESSION4args.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestroySessionArgs {
    pub sessionid: SessionId,
}

impl Xdr<'_> for DestroySessionArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(DestroySessionArgs {
            sessionid: sessionid(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed(&self.sessionid.0);
    }
}

/// DESTROY_CLIENTID4args.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestroyClientidArgs {
    pub clientid: u64,
}

impl Xdr<'_> for DestroyClientidArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(DestroyClientidArgs { clientid: d.u64()? })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.clientid);
    }
}

/// RECLAIM_COMPLETE4args.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReclaimCompleteArgs {
    pub one_fs: bool,
}

impl Xdr<'_> for ReclaimCompleteArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(ReclaimCompleteArgs { one_fs: d.bool()? })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_bool(self.one_fs);
    }
}

#[cfg(test)]
mod tests {
    use super::super::roundtrip;
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn sid() -> impl Strategy<Value = SessionId> {
        any::<[u8; 16]>().prop_map(SessionId)
    }

    fn channel() -> impl Strategy<Value = ChannelAttrs> {
        (any::<[u32; 6]>(), any::<Option<u32>>()).prop_map(|(w, ird)| ChannelAttrs {
            headerpadsize: w[0],
            maxrequestsize: w[1],
            maxresponsesize: w[2],
            maxresponsesize_cached: w[3],
            maxoperations: w[4],
            maxrequests: w[5],
            rdma_ird: ird,
        })
    }

    fn bitmap() -> impl Strategy<Value = Vec<u32>> {
        // encode_bitmap drops trailing zero words.
        vec(any::<u32>(), 0..4).prop_map(|mut v| {
            while v.last() == Some(&0) {
                v.pop();
            }
            v
        })
    }

    fn ops() -> impl Strategy<Value = StateProtectOps> {
        (bitmap(), bitmap()).prop_map(|(must_enforce, must_allow)| StateProtectOps {
            must_enforce,
            must_allow,
        })
    }

    proptest! {
        #[test]
        fn fixed_layouts_round_trip(s in sid(), w in any::<[u32; 5]>(), b in any::<bool>(),
                                    id in any::<u64>(), fore in channel(), back in channel()) {
            roundtrip!(SequenceArgs { sessionid: s, sequenceid: w[0], slotid: w[1],
                highest_slotid: w[2], cachethis: b });
            roundtrip!(SequenceResOk { sessionid: s, sequenceid: w[0], slotid: w[1],
                highest_slotid: w[2], target_highest_slotid: w[3], status_flags: w[4] });
            roundtrip!(CreateSessionResOk { sessionid: s, sequence: w[0], flags: w[1], fore, back });
            roundtrip!(BindConnArgs { sessionid: s, dir: w[0], use_rdma: b });
            roundtrip!(DestroySessionArgs { sessionid: s });
            roundtrip!(DestroyClientidArgs { clientid: id });
            roundtrip!(ReclaimCompleteArgs { one_fs: b });
            prop_assert_eq!(SequenceResOk { sessionid: s, sequenceid: 0, slotid: 0,
                highest_slotid: 0, target_highest_slotid: 0, status_flags: 0 }.to_bytes().len(),
                SequenceResOk::LEN);
        }

        #[test]
        fn exchange_id_round_trips(verifier in any::<[u8; 8]>(), owner in vec(any::<u8>(), 0..64),
                                   flags in any::<u32>(), how in 0u32..3, ops in ops(),
                                   oids in vec(vec(any::<u8>(), 0..9), 0..3),
                                   w in any::<[u32; 6]>(), id in any::<u64>(),
                                   name in vec(any::<u8>(), 0..20), date in any::<(i64, u32)>(),
                                   with_impl in any::<bool>()) {
            let oid_refs: Vec<&[u8]> = oids.iter().map(Vec::as_slice).collect();
            let impl_id = with_impl.then(|| ImplId { domain: &name, name: &owner, date });
            let state_protect = match how {
                0 => StateProtectArgs::None,
                1 => StateProtectArgs::MachCred(ops.clone()),
                _ => StateProtectArgs::Ssv { ops: ops.clone(), hash_algs: oid_refs.clone(),
                    encr_algs: oid_refs.clone(), window: w[0], num_gss_handles: w[1] },
            };
            roundtrip!(ExchangeIdArgs { verifier, owner: &owner, flags, state_protect,
                impl_id: impl_id.clone() });
            let state_protect = match how {
                0 => StateProtectRes::None,
                1 => StateProtectRes::MachCred(ops.clone()),
                _ => StateProtectRes::Ssv { ops, hash_alg: w[0], encr_alg: w[1], ssv_len: w[2],
                    window: w[3], handles: oid_refs },
            };
            roundtrip!(ExchangeIdResOk { clientid: id, sequenceid: w[4], flags, state_protect,
                server_owner: ServerOwner { minor_id: id, major_id: &name },
                server_scope: &owner, impl_id });
        }

        #[test]
        fn create_session_round_trips(id in any::<u64>(), w in any::<[u32; 4]>(),
                                      fore in channel(), back in channel(),
                                      name in vec(any::<u8>(), 0..32),
                                      gids in vec(any::<u32>(), 0..16),
                                      handle in vec(any::<u8>(), 0..40), kinds in vec(0u8..3, 0..4)) {
            let sec_parms = kinds.iter().map(|k| match k {
                0 => CallbackSecParms::None,
                1 => CallbackSecParms::Sys(AuthSys { stamp: w[0], machine_name: name.clone(),
                    uid: w[1], gid: w[2], gids: gids.clone() }),
                _ => CallbackSecParms::Gss { service: w[3], server_handle: &handle,
                    client_handle: &name },
            }).collect();
            roundtrip!(CreateSessionArgs { clientid: id, sequence: w[0], flags: w[1], fore, back,
                cb_program: w[2], sec_parms });
        }
    }

    #[test]
    fn undefined_union_arms_do_not_decode() {
        let mut v = ExchangeIdArgs {
            verifier: [0; 8],
            owner: b"o",
            flags: 0,
            state_protect: StateProtectArgs::None,
            impl_id: None,
        }
        .to_bytes();
        // state_protect_how4 follows verifier (8), owner (8) and flags (4).
        v[20..24].copy_from_slice(&7u32.to_be_bytes());
        assert!(ExchangeIdArgs::from_bytes(&v).is_err());
        // A callback flavor RFC 8881 does not list.
        let mut c = Vec::new();
        c.put_u32(42);
        assert!(CallbackSecParms::decode(&mut XdrDecoder::new(&c)).is_err());
    }
}
