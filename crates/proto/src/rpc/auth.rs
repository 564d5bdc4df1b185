//! RPC credentials: AUTH_NONE and AUTH_SYS (RFC 5531 Appendix A).

use super::gss::GssService;
use crate::xdr::{XdrDecoder, XdrEncoder, XdrError};

pub const AUTH_NONE: u32 = 0;
pub const AUTH_SYS: u32 = 1;
/// RPCSEC_GSS (RFC 2203): refused as an RPC credential (AUTH_TOOWEAK); in NFSv4 it
/// also names the flavor in secinfo4 and callback_sec_parms4.
pub const RPCSEC_GSS: u32 = 6;
/// AUTH_TLS (RFC 9289 §4.1): only the NULL procedure's probe for RPC-with-TLS, with an
/// empty body; never a caller's identity.
pub const AUTH_TLS: u32 = 7;
/// The verifier body of the reply to an AUTH_TLS probe from a server that starts TLS.
pub const STARTTLS_VERIFIER: &[u8; 8] = b"STARTTLS";
/// Most AUTH_SYS implementations cap the supplementary group list at 16.
pub const AUTH_SYS_MAX_GIDS: usize = 16;
pub const AUTH_SYS_MAX_MACHINE_NAME: usize = 255;
/// RFC 5531: opaque_auth bodies are at most 400 bytes.
pub const MAX_AUTH_BYTES: usize = 400;

/// AUTH_SYS fields an operation may use for access checks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthSys {
    pub stamp: u32,
    pub machine_name: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    pub gids: Vec<u32>,
}

impl AuthSys {
    /// authsys_parms (the body of an AUTH_SYS credential, or inline in
    /// callback_sec_parms4).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.stamp);
        out.put_opaque(&self.machine_name);
        out.put_u32(self.uid);
        out.put_u32(self.gid);
        out.put_u32(self.gids.len() as u32);
        for g in &self.gids {
            out.put_u32(*g);
        }
    }
}

/// A caller the server authenticated with RPCSEC_GSS (Kerberos): made by the server
/// from an established context, never decoded from a credential on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GssCaller {
    /// How the call was protected (krb5, krb5i, krb5p).
    pub service: GssService,
    /// The Kerberos principal, e.g. `alice@EXAMPLE.COM`.
    pub principal: String,
    /// The local user it maps to (uid, gid, groups); None: the anonymous user.
    pub ids: Option<(u32, u32, Vec<u32>)>,
}

/// The caller's identity, as carried by the RPC call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Credential {
    #[default]
    None,
    Sys(AuthSys),
    Gss(GssCaller),
}

impl Credential {
    pub fn uid(&self) -> Option<u32> {
        match self {
            Credential::None => None,
            Credential::Sys(s) => Some(s.uid),
            Credential::Gss(g) => g.ids.as_ref().map(|i| i.0),
        }
    }

    /// The caller has a principal SP4_MACH_CRED can hold it to (AUTH_NONE has none).
    pub fn has_principal(&self) -> bool {
        !matches!(self, Credential::None)
    }

    /// Encode as an opaque_auth (flavor + body). An RPCSEC_GSS credential is made per
    /// call by whoever holds the context (`message::encode_call_raw`); a `Gss` caller
    /// encodes as AUTH_NONE (the server never calls back with one).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Credential::None | Credential::Gss(_) => {
                out.put_u32(AUTH_NONE);
                out.put_u32(0);
            }
            Credential::Sys(s) => {
                out.put_u32(AUTH_SYS);
                let len_at = out.mark();
                out.put_u32(0);
                let start = out.len();
                s.encode(out);
                let len = out.len() - start;
                out.patch_u32(len_at, len as u32);
            }
        }
    }
}

/// Why a credential was refused; maps to an RPC AUTH_ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// AUTH_BADCRED: malformed or unsupported credential.
    BadCred,
    /// AUTH_TOOWEAK: a flavor we do not accept (e.g. RPCSEC_GSS).
    TooWeak,
}

impl AuthError {
    pub fn auth_stat(self) -> u32 {
        match self {
            AuthError::BadCred => 1,
            AuthError::TooWeak => 5,
        }
    }
}

/// Decode a credential body of the given flavor.
pub fn decode_credential(flavor: u32, body: &[u8]) -> Result<Credential, AuthError> {
    match flavor {
        AUTH_NONE => Ok(Credential::None),
        // The probe's credential has an empty body; the procedure decides the rest.
        AUTH_TLS if body.is_empty() => Ok(Credential::None),
        AUTH_TLS => Err(AuthError::BadCred),
        AUTH_SYS => decode_auth_sys(body)
            .map(Credential::Sys)
            .map_err(|_| AuthError::BadCred),
        _ => Err(AuthError::TooWeak),
    }
}

fn decode_auth_sys(body: &[u8]) -> Result<AuthSys, XdrError> {
    let mut d = XdrDecoder::new(body);
    let stamp = d.u32()?;
    let machine_name = d.opaque(AUTH_SYS_MAX_MACHINE_NAME)?.to_vec();
    let uid = d.u32()?;
    let gid = d.u32()?;
    let n = d.array_len(AUTH_SYS_MAX_GIDS, 4)?;
    let mut gids = Vec::with_capacity(n);
    for _ in 0..n {
        gids.push(d.u32()?);
    }
    Ok(AuthSys {
        stamp,
        machine_name,
        uid,
        gid,
        gids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_sys_round_trip_and_limits() {
        let cred = Credential::Sys(AuthSys {
            stamp: 1,
            machine_name: b"host".to_vec(),
            uid: 1000,
            gid: 100,
            gids: vec![1, 2, 3],
        });
        let mut out = Vec::new();
        cred.encode(&mut out);
        let mut d = XdrDecoder::new(&out);
        let flavor = d.u32().unwrap();
        let body = d.opaque(MAX_AUTH_BYTES).unwrap();
        assert_eq!(decode_credential(flavor, body).unwrap(), cred);

        let big = Credential::Sys(AuthSys {
            gids: (0..17).collect(),
            ..Default::default()
        });
        let mut out = Vec::new();
        big.encode(&mut out);
        let mut d = XdrDecoder::new(&out);
        let flavor = d.u32().unwrap();
        let body = d.opaque(MAX_AUTH_BYTES).unwrap();
        assert_eq!(decode_credential(flavor, body), Err(AuthError::BadCred));
        assert_eq!(decode_credential(6, &[]), Err(AuthError::TooWeak));
    }
}
