//! Property tests: what the encoders write, the decoders read back unchanged, consuming
//! exactly the bytes written (XDR types of the RPC, NFSv4.1 and record layers).

use proptest::collection::vec;
use proptest::prelude::*;

use super::{XdrDecoder, XdrEncoder, pad4};
use crate::nfs4::types::ChannelAttrs;
use crate::nfs4::types::{
    decode_bitmap, decode_channel_attrs, encode_bitmap, encode_channel_attrs,
};
use crate::rpc::auth::{AUTH_SYS, decode_credential};
use crate::rpc::{AuthSys, Credential, RpcMessage, decode_message, encode_call};
use crate::stateid::Stateid;

fn auth_sys() -> impl Strategy<Value = AuthSys> {
    (
        any::<u32>(),
        vec(any::<u8>(), 0..=255),
        any::<u32>(),
        any::<u32>(),
        vec(any::<u32>(), 0..=16),
    )
        .prop_map(|(stamp, machine_name, uid, gid, gids)| AuthSys {
            stamp,
            machine_name,
            uid,
            gid,
            gids,
        })
}

fn channel_attrs() -> impl Strategy<Value = ChannelAttrs> {
    (any::<[u32; 6]>(), proptest::option::of(any::<u32>())).prop_map(|(v, rdma_ird)| ChannelAttrs {
        headerpadsize: v[0],
        maxrequestsize: v[1],
        maxresponsesize: v[2],
        maxresponsesize_cached: v[3],
        maxoperations: v[4],
        maxrequests: v[5],
        rdma_ird,
    })
}

proptest! {
    #[test]
    fn primitives_round_trip(
        a in any::<u32>(), b in any::<i32>(), c in any::<u64>(), d in any::<i64>(),
        e in any::<bool>(), f in vec(any::<u8>(), 0..300), g in any::<[u8; 12]>(),
    ) {
        let mut out = Vec::new();
        out.put_u32(a);
        out.put_i32(b);
        out.put_u64(c);
        out.put_i64(d);
        out.put_bool(e);
        out.put_opaque(&f);
        out.put_fixed(&g);
        prop_assert_eq!(out.len() % 4, 0);
        prop_assert_eq!(out.len(), 4 + 4 + 8 + 8 + 4 + 4 + pad4(f.len()) + 12);
        let mut x = XdrDecoder::new(&out);
        prop_assert_eq!(x.u32().unwrap(), a);
        prop_assert_eq!(x.i32().unwrap(), b);
        prop_assert_eq!(x.u64().unwrap(), c);
        prop_assert_eq!(x.i64().unwrap(), d);
        prop_assert_eq!(x.bool().unwrap(), e);
        prop_assert_eq!(x.opaque(300).unwrap(), &f[..]);
        prop_assert_eq!(x.array::<12>().unwrap(), g);
        prop_assert_eq!(x.remaining(), 0);
    }

    #[test]
    fn opaque_over_its_bound_is_refused(f in vec(any::<u8>(), 1..100)) {
        let mut out = Vec::new();
        out.put_opaque(&f);
        prop_assert!(XdrDecoder::new(&out).opaque(f.len() - 1).is_err());
    }

    #[test]
    fn truncated_input_never_panics(f in vec(any::<u8>(), 0..64), cut in 0usize..64) {
        let mut out = Vec::new();
        out.put_opaque(&f);
        out.put_u64(7);
        let cut = cut.min(out.len());
        let mut x = XdrDecoder::new(&out[..cut]);
        let ok = x.opaque(64).is_ok() && x.u64().is_ok();
        prop_assert_eq!(ok, cut == out.len());
    }

    #[test]
    fn bitmap_round_trip(words in vec(any::<u32>(), 0..8)) {
        let mut out = Vec::new();
        encode_bitmap(&mut out, &words);
        let mut x = XdrDecoder::new(&out);
        let back = decode_bitmap(&mut x).unwrap();
        // Trailing zero words may be dropped by the encoder; the set bits are the same.
        let trim = |w: &[u32]| {
            let mut v = w.to_vec();
            while v.last() == Some(&0) {
                v.pop();
            }
            v
        };
        prop_assert_eq!(trim(&back), trim(&words));
        prop_assert_eq!(x.remaining(), 0);
    }

    #[test]
    fn channel_attrs_round_trip(a in channel_attrs()) {
        let mut out = Vec::new();
        encode_channel_attrs(&mut out, &a);
        let mut x = XdrDecoder::new(&out);
        prop_assert_eq!(decode_channel_attrs(&mut x).unwrap(), a);
        prop_assert_eq!(x.remaining(), 0);
    }

    #[test]
    fn stateid_round_trip(seqid in any::<u32>(), other in any::<[u8; 12]>()) {
        let s = Stateid { seqid, other };
        let mut out = Vec::new();
        s.encode(&mut out);
        prop_assert_eq!(out.len(), 16);
        prop_assert_eq!(Stateid::decode(&mut XdrDecoder::new(&out)).unwrap(), s);
    }

    #[test]
    fn auth_sys_round_trip(a in auth_sys()) {
        let mut body = Vec::new();
        a.encode(&mut body);
        prop_assert_eq!(decode_credential(AUTH_SYS, &body).unwrap(), Credential::Sys(a));
    }

    #[test]
    fn auth_sys_over_limits_is_refused(mut a in auth_sys(), extra_gids in 17usize..40) {
        a.gids = (0..extra_gids as u32).collect();
        let mut body = Vec::new();
        a.encode(&mut body);
        prop_assert!(decode_credential(AUTH_SYS, &body).is_err());
    }

    #[test]
    fn rpc_call_round_trip(
        xid in any::<u32>(), prog in any::<u32>(), vers in any::<u32>(), proc_ in any::<u32>(),
        cred in prop_oneof![Just(Credential::None), auth_sys().prop_map(Credential::Sys)],
        args in vec(any::<u8>(), 0..64),
    ) {
        let mut out = Vec::new();
        encode_call(&mut out, xid, prog, vers, proc_, &cred);
        out.extend_from_slice(&args);
        match decode_message(&out).unwrap() {
            RpcMessage::Call(c) => {
                prop_assert_eq!((c.xid, c.prog, c.vers, c.proc_), (xid, prog, vers, proc_));
                prop_assert_eq!(c.cred.unwrap(), cred);
                prop_assert_eq!(c.args, &args[..]);
            }
            RpcMessage::Reply(_) => prop_assert!(false, "decoded as a reply"),
        }
    }

    #[test]
    fn records_round_trip_through_any_split(
        recs in vec(vec(any::<u8>(), 0..200), 0..8),
        cuts in vec(1usize..50, 1..20),
    ) {
        let stream: Vec<u8> = recs.iter().flat_map(|r| crate::rpc::record::frame(r)).collect();
        let mut asm = crate::rpc::record::RecordAssembler::new(1024);
        let mut got = Vec::new();
        let mut at = 0;
        let mut i = 0;
        while at < stream.len() {
            let end = (at + cuts[i % cuts.len()]).min(stream.len());
            asm.feed(&stream[at..end], |r| {
                got.push(r.to_vec());
                true
            })
            .unwrap();
            at = end;
            i += 1;
        }
        prop_assert_eq!(got, recs);
        prop_assert!(asm.is_idle());
    }
}
