//! The GSS-API layer against a real MIT KDC (ringnfs-testkit's `kdc`): both ends of a
//! context in this process, the client with a user's tickets, the server with the
//! service keytab. Every test calls `setup` first: it starts the one KDC of this test
//! binary and points MIT's library at it before any GSS-API call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ringnfs_gss::{
    AcceptState, AcceptStep, Acceptor, Gss, GssError, InitStep, Initiator, SecContext, status,
};
use ringnfs_testkit::kdc::{self, Kdc, KdcError};

/// The KDC and the library, or None after a visible skip (no KDC tools installed).
fn setup(test: &str) -> Option<(&'static Kdc, Arc<Gss>)> {
    let kdc = match Kdc::shared() {
        Ok(kdc) => kdc,
        Err(e @ KdcError::Missing { .. }) => {
            ringnfs_testkit::skip(test, &e.to_string());
            return None;
        }
        Err(e) => panic!("starting the test KDC: {e}"),
    };
    let gss = Gss::load().unwrap_or_else(|e| panic!("{e}"));
    Some((kdc, gss))
}

/// Both ends of an established context: (client's, server's, initiator's principal).
struct Pair {
    client: SecContext,
    server: SecContext,
    initiator: String,
}

/// Runs the exchange RPCSEC_GSS carries in INIT and CONTINUE_INIT until both ends are
/// established.
fn establish(
    gss: &Gss,
    acceptor: &Acceptor,
    ccache: &kdc::Ccache,
    target: &str,
) -> Result<Pair, GssError> {
    let mut initiator = Initiator::with_ccache(gss, target, &ccache.name())?;
    let mut state = AcceptState::new();
    let mut to_server = match initiator.step(None)? {
        InitStep::Continue { token } => token,
        InitStep::Complete { .. } => panic!("krb5 with mutual authentication takes two legs"),
    };
    for _ in 0..4 {
        match acceptor.step(&mut state, &to_server)? {
            AcceptStep::Continue { token } => match initiator.step(Some(&token))? {
                InitStep::Continue { token } => to_server = token,
                InitStep::Complete { .. } => panic!("the client finished before the server"),
            },
            AcceptStep::Complete {
                context,
                token,
                initiator: name,
            } => {
                let reply = token.expect("the mutual-authentication reply (AP-REP)");
                return match initiator.step(Some(&reply))? {
                    InitStep::Complete {
                        context: client,
                        token: None,
                    } => Ok(Pair {
                        client,
                        server: context,
                        initiator: name,
                    }),
                    _ => panic!("the client did not finish on the server's reply"),
                };
            }
        }
    }
    panic!("no context after four round trips")
}

fn routine(e: &GssError) -> u32 {
    e.routine_error()
        .unwrap_or_else(|| panic!("not a GSS status: {e}"))
}

/// A failure's text is the library's, not Rust's debug form.
fn assert_words(e: &GssError, call: &str) {
    let text = e.to_string();
    assert!(text.starts_with(call), "{text}");
    assert!(text.contains("GSS major status 0x"), "{text}");
    assert!(!text.contains("Status {"), "{text}");
}

#[test]
fn users_establish_contexts_with_the_service_and_are_named() {
    let Some((kdc, gss)) = setup("users_establish_contexts_with_the_service_and_are_named") else {
        return;
    };
    let acceptor = Acceptor::new(&gss, Some(&kdc.service_keytab())).unwrap();
    for user in kdc::USERS {
        let cc = kdc.kinit(user, None).unwrap();
        let pair = establish(&gss, &acceptor, &cc, "nfs@localhost").unwrap();
        assert_eq!(pair.initiator, format!("{user}@{}", kdc::REALM));
        // The context lives as long as the ticket: the realm's hour, less what passed.
        for ctx in [&pair.client, &pair.server] {
            let left = ctx.lifetime();
            assert!(
                left > Duration::from_secs(3000)
                    && left <= Duration::from_secs(3600) + kdc::CLOCK_SKEW,
                "{left:?}"
            );
        }
    }
}

#[test]
fn checksums_verify_both_ways_and_fail_when_changed_or_foreign() {
    let Some((kdc, gss)) = setup("checksums_verify_both_ways_and_fail_when_changed_or_foreign")
    else {
        return;
    };
    let acceptor = Acceptor::new(&gss, Some(&kdc.service_keytab())).unwrap();
    let cc = kdc.kinit("alice", None).unwrap();
    let a = establish(&gss, &acceptor, &cc, "nfs@localhost").unwrap();
    let b = establish(&gss, &acceptor, &cc, "nfs@localhost").unwrap();

    let call = b"the arguments of call 7";
    let mic = a.client.get_mic(call).unwrap();
    a.server.verify_mic(call, &mic).unwrap();
    // The reply's verifier goes the other way; the server's context may have moved to
    // another thread meanwhile.
    let server = a.server;
    let (server, reply_mic) = std::thread::spawn(move || {
        let m = server.get_mic(b"the results").unwrap();
        (server, m)
    })
    .join()
    .unwrap();
    a.client.verify_mic(b"the results", &reply_mic).unwrap();
    // Checked again: no replay detection at this level (RPCSEC_GSS has its own window,
    // and a retransmitted call carries the same checksum).
    server.verify_mic(call, &mic).unwrap();

    let e = server
        .verify_mic(b"the arguments of call 8", &mic)
        .unwrap_err();
    assert_eq!(routine(&e), status::BAD_SIG, "{e}");
    assert_words(&e, "gss_verify_mic");
    let mut bad = mic.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let e = server.verify_mic(call, &bad).unwrap_err();
    assert_eq!(routine(&e), status::BAD_SIG, "{e}");
    let e = server.verify_mic(call, &[]).unwrap_err();
    assert_words(&e, "gss_verify_mic");

    // Another context of the same user and service has other keys.
    let e = b.server.verify_mic(call, &mic).unwrap_err();
    assert_eq!(routine(&e), status::BAD_SIG, "{e}");
    let mic_b = b.client.get_mic(call).unwrap();
    assert!(server.verify_mic(call, &mic_b).is_err());
    b.server.verify_mic(call, &mic_b).unwrap();
}

#[test]
fn wrapped_messages_unwrap_with_or_without_encryption_and_not_when_changed() {
    let Some((kdc, gss)) =
        setup("wrapped_messages_unwrap_with_or_without_encryption_and_not_when_changed")
    else {
        return;
    };
    let acceptor = Acceptor::new(&gss, Some(&kdc.service_keytab())).unwrap();
    let cc = kdc.kinit("bob", None).unwrap();
    let a = establish(&gss, &acceptor, &cc, "nfs@localhost").unwrap();
    let b = establish(&gss, &acceptor, &cc, "nfs@localhost").unwrap();
    let body = b"seq 9, WRITE 4096 bytes of plain text to /export/file".repeat(8);
    let contains = |hay: &[u8]| hay.windows(body.len()).any(|w| w == &body[..]);

    let sealed = a.client.wrap(&body, true).unwrap();
    assert!(!contains(&sealed), "krb5p encrypts");
    let open = a.server.unwrap(&sealed).unwrap();
    assert_eq!(open.message, body);
    assert!(open.confidential);

    let signed = a.server.wrap(&body, false).unwrap();
    assert!(contains(&signed), "krb5i only checksums");
    let open = a.client.unwrap(&signed).unwrap();
    assert_eq!(open.message, body);
    assert!(!open.confidential);

    for token in [&sealed, &signed] {
        let mut bad = token.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x40;
        let peer = if token == &sealed {
            &a.server
        } else {
            &a.client
        };
        let e = peer.unwrap(&bad).unwrap_err();
        assert_words(&e, "gss_unwrap");
        assert!(peer.unwrap(&token[..token.len() - 1]).is_err());
    }
    let e = b.server.unwrap(&sealed).unwrap_err();
    assert_words(&e, "gss_unwrap");
}

#[test]
fn a_service_missing_from_the_keytab_is_refused_in_words() {
    let Some((kdc, gss)) = setup("a_service_missing_from_the_keytab_is_refused_in_words") else {
        return;
    };
    let acceptor = Acceptor::new(&gss, Some(&kdc.service_keytab())).unwrap();
    let cc = kdc.kinit("alice", None).unwrap();
    // The KDC knows nfs/otherhost, so the client gets a ticket; the keytab has no key.
    let e = match establish(&gss, &acceptor, &cc, "nfs@otherhost") {
        Ok(_) => panic!("accepted a ticket for a service not in the keytab"),
        Err(e) => e,
    };
    assert_words(&e, "gss_accept_sec_context");
    let text = e.to_string();
    assert!(text.contains("nfs/otherhost"), "{text}");

    // Under that service's own keytab the same client is accepted.
    let other = Acceptor::new(&gss, Some(&kdc.keytab(kdc::OTHER_SERVICE))).unwrap();
    let pair = establish(&gss, &other, &cc, "nfs@otherhost").unwrap();
    assert_eq!(pair.initiator, format!("alice@{}", kdc::REALM));

    // A service the KDC does not know: the client cannot get a ticket.
    let mut init = Initiator::with_ccache(&gss, "nfs@nohost", &cc.name()).unwrap();
    let e = match init.step(None) {
        Ok(_) => panic!("a ticket for an unknown service"),
        Err(e) => e,
    };
    assert_words(&e, "gss_init_sec_context");
    assert!(e.to_string().contains("not found"), "{e}");

    // A keytab that is not there fails when the acceptor is made.
    let missing = kdc.dir().join("no-such.keytab");
    let e = match Acceptor::new(&gss, Some(&missing)) {
        Ok(_) => panic!("an acceptor without a keytab"),
        Err(e) => e,
    };
    assert_words(&e, "gss_acquire_cred_from");
    assert!(e.to_string().contains("no-such.keytab"), "{e}");
}

#[test]
fn a_replayed_init_token_is_refused() {
    let Some((kdc, gss)) = setup("a_replayed_init_token_is_refused") else {
        return;
    };
    let acceptor = Acceptor::new(&gss, Some(&kdc.service_keytab())).unwrap();
    let cc = kdc.kinit("alice", None).unwrap();
    let mut init = Initiator::with_ccache(&gss, "nfs@localhost", &cc.name()).unwrap();
    let Ok(InitStep::Continue { token }) = init.step(None) else {
        panic!("no INIT token")
    };
    assert!(matches!(
        acceptor.step(&mut AcceptState::new(), &token),
        Ok(AcceptStep::Complete { .. })
    ));
    let e = match acceptor.step(&mut AcceptState::new(), &token) {
        Ok(_) => panic!("the same AP-REQ accepted twice"),
        Err(e) => e,
    };
    assert_words(&e.error, "gss_accept_sec_context");
    assert!(e.to_string().contains("replay"), "{e}");
}

#[test]
fn an_expired_ticket_is_refused_and_its_contexts_expire() {
    let Some((kdc, gss)) = setup("an_expired_ticket_is_refused_and_its_contexts_expire") else {
        return;
    };
    let acceptor = Acceptor::new(&gss, Some(&kdc.service_keytab())).unwrap();
    let lifetime = Duration::from_secs(3);
    let start = Instant::now();
    let cc = kdc.kinit("alice", Some("3s")).unwrap();
    // While the ticket is good: a context, and an INIT token not yet sent.
    let pair = establish(&gss, &acceptor, &cc, "nfs@localhost").unwrap();
    let mut late = Initiator::with_ccache(&gss, "nfs@localhost", &cc.name()).unwrap();
    let Ok(InitStep::Continue { token: late_token }) = late.step(None) else {
        panic!("no INIT token")
    };
    let call = b"a call";
    let mic = pair.client.get_mic(call).unwrap();
    pair.server.verify_mic(call, &mic).unwrap();
    let sealed = pair.client.wrap(call, true).unwrap();
    // The client's ends with the ticket; the server's the clock skew later.
    assert!(
        pair.client.lifetime() <= lifetime,
        "{:?}",
        pair.client.lifetime()
    );
    assert!(
        pair.server.lifetime() <= lifetime + kdc::CLOCK_SKEW,
        "{:?}",
        pair.server.lifetime()
    );

    // Past the ticket's end and the clock skew the acceptor allows (and one second more,
    // as Kerberos times are whole seconds).
    let past = lifetime + kdc::CLOCK_SKEW + Duration::from_secs(1);
    std::thread::sleep(past.saturating_sub(start.elapsed()) + Duration::from_millis(300));

    let e = match acceptor.step(&mut AcceptState::new(), &late_token) {
        Ok(_) => panic!("a token of an expired ticket was accepted"),
        Err(e) => e,
    };
    assert_words(&e.error, "gss_accept_sec_context");
    assert!(e.to_string().contains("Ticket expired"), "{e}");

    // MIT's own calls would go on working; SecContext keeps the end.
    let e = pair.server.verify_mic(call, &mic).unwrap_err();
    assert_eq!(routine(&e), status::CONTEXT_EXPIRED, "{e}");
    assert_words(&e, "gss_verify_mic");
    assert!(e.to_string().contains("expired"), "{e}");
    for e in [
        pair.server.get_mic(b"reply").unwrap_err(),
        pair.client.wrap(b"call", true).unwrap_err(),
        pair.server.unwrap(&sealed).unwrap_err(),
    ] {
        assert_eq!(routine(&e), status::CONTEXT_EXPIRED, "{e}");
    }
    assert_eq!(pair.server.lifetime(), Duration::ZERO);
    assert_eq!(pair.client.lifetime(), Duration::ZERO);

    // The client cannot start again with the expired tickets.
    let e = match Initiator::with_ccache(&gss, "nfs@localhost", &cc.name())
        .and_then(|mut i| i.step(None).map(|_| ()))
    {
        Ok(()) => panic!("a new context from expired tickets"),
        Err(e) => e,
    };
    assert_words(&e, "gss_init_sec_context");
    assert!(e.to_string().contains("Ticket expired"), "{e}");
}
