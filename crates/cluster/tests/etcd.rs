//! The etcd client against a real 3-member etcd cluster (ringnfs-testkit's etcd module,
//! whose clusters take turns within a test process).

use std::time::{Duration, Instant};

use ringnfs_cluster::etcd::{
    CmpOp, Compare, Etcd, EtcdError, KeyValue, Txn, TxnOp, Watch, WatchEvent,
};
use ringnfs_testkit::etcd::EtcdCluster;

const TIMEOUT: Duration = Duration::from_secs(3);

fn cluster(test: &str) -> Option<(EtcdCluster, Etcd)> {
    let cluster = EtcdCluster::start_or_skip(test, 3)?;
    let etcd = Etcd::new(&cluster.endpoints(), TIMEOUT).unwrap();
    Some((cluster, etcd))
}

fn keys(kvs: &[KeyValue]) -> Vec<&[u8]> {
    kvs.iter().map(|kv| kv.key.as_slice()).collect()
}

/// The next event; panics when none comes for a long while (a lost event).
fn next(watch: &Watch) -> WatchEvent {
    watch
        .recv_timeout(Duration::from_secs(20))
        .expect("no watch event came")
}

fn put_event(e: WatchEvent) -> KeyValue {
    match e {
        WatchEvent::Put(kv) => kv,
        other => panic!("expected a put, got {other:?}"),
    }
}

fn delete_event(e: WatchEvent) -> KeyValue {
    match e {
        WatchEvent::Delete(kv) => kv,
        other => panic!("expected a delete, got {other:?}"),
    }
}

#[test]
fn put_get_prefix_and_delete() {
    let Some((_cluster, etcd)) = cluster("put_get_prefix_and_delete") else {
        return;
    };
    assert_eq!(etcd.get(b"kv/a").unwrap(), None);
    let r1 = etcd.put(b"kv/a", b"1", None).unwrap();
    let r2 = etcd.put(b"kv/b", b"", None).unwrap();
    let r3 = etcd.put(b"kv/a", b"\x00\xff binary", None).unwrap();
    etcd.put(b"kw", b"outside the prefix", None).unwrap();
    assert!(r1 < r2 && r2 < r3);

    let a = etcd.get(b"kv/a").unwrap().unwrap();
    assert_eq!(a.value, b"\x00\xff binary");
    assert_eq!(
        (a.create_revision, a.mod_revision, a.version, a.lease),
        (r1, r3, 2, 0)
    );
    assert_eq!(etcd.get(b"kv/b").unwrap().unwrap().value, b"");

    let (kvs, rev) = etcd.get_prefix(b"kv/").unwrap();
    assert_eq!(keys(&kvs), [b"kv/a".as_slice(), b"kv/b"]);
    assert!(rev > r3, "read at {rev}, after the put of kw");

    assert_eq!(etcd.delete(b"kv/a").unwrap(), 1);
    assert_eq!(etcd.delete(b"kv/a").unwrap(), 0);
    assert_eq!(etcd.get(b"kv/a").unwrap(), None);
    etcd.put(b"kv/c", b"3", None).unwrap();
    assert_eq!(etcd.delete_prefix(b"kv/").unwrap(), 2);
    assert!(etcd.get_prefix(b"kv/").unwrap().0.is_empty());
    assert!(etcd.get(b"kw").unwrap().is_some());

    // One client from several threads at once (clones share its connections).
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let etcd = etcd.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    let key = format!("par/{t}/{i:02}");
                    etcd.put(key.as_bytes(), key.as_bytes(), None).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (par, _) = etcd.get_prefix(b"par/").unwrap();
    assert_eq!(par.len(), 80);
    assert!(par.iter().all(|kv| kv.key == kv.value));

    let status = etcd.status().unwrap();
    assert!(status.version.starts_with("3."), "{status:?}");
    assert_ne!(status.leader, 0);
    assert!(status.revision >= rev);
}

#[test]
fn txn_create_if_absent_succeeds_once() {
    let Some((_cluster, etcd)) = cluster("txn_create_if_absent_succeeds_once") else {
        return;
    };
    let create = |value: &[u8]| {
        Txn::new()
            .when([Compare::CreateRevision(b"owner".to_vec(), CmpOp::Equal, 0)])
            .and_then([TxnOp::Put {
                key: b"owner".to_vec(),
                value: value.to_vec(),
                lease: None,
            }])
            .or_else([TxnOp::Get(b"owner".to_vec())])
    };
    let first = etcd.txn(&create(b"node-1")).unwrap();
    assert!(first.succeeded);
    assert!(first.gets.is_empty());
    let second = etcd.txn(&create(b"node-2")).unwrap();
    assert!(!second.succeeded);
    assert_eq!(second.gets.len(), 1);
    assert_eq!(second.gets[0].len(), 1);
    assert_eq!(second.gets[0][0].value, b"node-1");
    assert_eq!(second.gets[0][0].mod_revision, first.revision);

    // Compare-and-swap on the value and mod revision; a GetPrefix in the branch taken.
    let cas = Txn::new()
        .when([
            Compare::Value(b"owner".to_vec(), CmpOp::Equal, b"node-1".to_vec()),
            Compare::ModRevision(b"owner".to_vec(), CmpOp::Equal, first.revision),
        ])
        .and_then([
            TxnOp::Put {
                key: b"owner".to_vec(),
                value: b"node-3".to_vec(),
                lease: None,
            },
            TxnOp::GetPrefix(b"own".to_vec()),
        ]);
    let swapped = etcd.txn(&cas).unwrap();
    assert!(swapped.succeeded);
    assert_eq!(swapped.gets.len(), 1);
    assert_eq!(swapped.gets[0][0].value, b"node-3");
    assert!(!etcd.txn(&cas).unwrap().succeeded);
    let gone = Txn::new()
        .when([Compare::Version(b"owner".to_vec(), CmpOp::Greater, 1)])
        .and_then([TxnOp::Delete(b"owner".to_vec())]);
    assert!(etcd.txn(&gone).unwrap().succeeded);
    assert_eq!(etcd.get(b"owner").unwrap(), None);
}

/// Polls until `key` is gone; false if it is still there after a long while.
fn disappears(etcd: &Etcd, key: &[u8]) -> bool {
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        if etcd.get(key).unwrap().is_none() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn a_leased_key_stays_while_kept_alive_and_goes_after() {
    let Some((_cluster, etcd)) = cluster("a_leased_key_stays_while_kept_alive_and_goes_after")
    else {
        return;
    };
    let lease = etcd.lease_grant(2).unwrap();
    assert_eq!(lease.ttl, 2);
    etcd.put(b"alive", b"1", Some(lease.id)).unwrap();
    assert_eq!(etcd.get(b"alive").unwrap().unwrap().lease, lease.id);
    // Kept alive for three times its TTL: still there.
    for _ in 0..12 {
        let left = etcd.lease_keepalive(lease.id).unwrap();
        assert!(left > 0);
        std::thread::sleep(Duration::from_millis(500));
        assert!(etcd.get(b"alive").unwrap().is_some());
    }
    assert!(disappears(&etcd, b"alive"), "the lease never expired");
    match etcd.lease_keepalive(lease.id) {
        Err(EtcdError::LeaseExpired(id)) => assert_eq!(id, lease.id),
        other => panic!("keepalive of an expired lease: {other:?}"),
    }
}

#[test]
fn lease_revoke_deletes_at_once() {
    let Some((_cluster, etcd)) = cluster("lease_revoke_deletes_at_once") else {
        return;
    };
    let lease = etcd.lease_grant(60).unwrap();
    etcd.put(b"r/1", b"1", Some(lease.id)).unwrap();
    etcd.txn(&Txn::new().and_then([TxnOp::Put {
        key: b"r/2".to_vec(),
        value: b"2".to_vec(),
        lease: Some(lease.id),
    }]))
    .unwrap();
    etcd.put(b"r/3", b"no lease", None).unwrap();
    etcd.lease_revoke(lease.id).unwrap();
    let (left, _) = etcd.get_prefix(b"r/").unwrap();
    assert_eq!(keys(&left), [b"r/3".as_slice()]);
    assert!(matches!(
        etcd.lease_keepalive(lease.id),
        Err(EtcdError::LeaseExpired(_))
    ));
    match etcd.lease_revoke(lease.id) {
        Err(EtcdError::Status { code: 5, message }) => assert!(message.contains("not found")),
        other => panic!("second revoke: {other:?}"),
    }
}

#[test]
fn watch_delivers_in_order_across_the_loss_of_its_member() {
    let Some((mut cluster, etcd)) =
        cluster("watch_delivers_in_order_across_the_loss_of_its_member")
    else {
        return;
    };
    let watch = etcd.watch_prefix(b"w/", 0).unwrap();
    let r1 = etcd.put(b"w/1", b"a", None).unwrap();
    etcd.put(b"x/not-watched", b"", None).unwrap();
    let r2 = etcd.put(b"w/2", b"b", None).unwrap();
    let r3 = etcd
        .delete(b"w/1")
        .map(|_| etcd.get_prefix(b"w/").unwrap().1)
        .unwrap();

    let e1 = put_event(next(&watch));
    assert_eq!(
        (e1.key.as_slice(), e1.value.as_slice(), e1.mod_revision),
        (b"w/1".as_slice(), b"a".as_slice(), r1)
    );
    let e2 = put_event(next(&watch));
    assert_eq!(
        (e2.key.as_slice(), e2.mod_revision),
        (b"w/2".as_slice(), r2)
    );
    let e3 = delete_event(next(&watch));
    assert_eq!(
        (e3.key.as_slice(), e3.mod_revision),
        (b"w/1".as_slice(), r3)
    );

    // Kill the member the stream comes from; the changes made meanwhile arrive, once each.
    let through = watch.endpoint();
    let victim = cluster
        .endpoints()
        .iter()
        .position(|e| *e == through)
        .expect("the watch names one of the cluster's endpoints");
    cluster.kill(victim);
    cluster.wait_ready().unwrap();
    let mut expected = Vec::new();
    for i in 0..5 {
        let key = format!("w/after/{i}").into_bytes();
        expected.push((key.clone(), true, etcd.put(&key, b"v", None).unwrap()));
    }
    etcd.delete(b"w/2").unwrap();
    expected.push((b"w/2".to_vec(), false, etcd.get_prefix(b"w/").unwrap().1));
    for (key, is_put, rev) in expected {
        let kv = match next(&watch) {
            WatchEvent::Put(kv) if is_put => kv,
            WatchEvent::Delete(kv) if !is_put => kv,
            other => panic!(
                "expected {} of {key:?}, got {other:?}",
                if is_put { "a put" } else { "a delete" }
            ),
        };
        assert_eq!((kv.key, kv.mod_revision), (key, rev));
    }
    assert_ne!(watch.endpoint(), through);
    // Nothing more: no event twice.
    assert!(watch.recv_timeout(Duration::from_millis(500)).is_err());

    // Dropping the watch returns (its thread ended) although no event comes.
    let (done, ended) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        drop(watch);
        let _ = done.send(());
    });
    ended
        .recv_timeout(Duration::from_secs(10))
        .expect("dropping a watch did not stop its thread");
}

#[test]
fn a_watch_from_a_past_revision_replays_or_resyncs_when_compacted() {
    let Some((_cluster, etcd)) =
        cluster("a_watch_from_a_past_revision_replays_or_resyncs_when_compacted")
    else {
        return;
    };
    let r1 = etcd.put(b"h/1", b"1", None).unwrap();
    let r2 = etcd.put(b"h/1", b"2", None).unwrap();
    let watch = etcd.watch_prefix(b"h/", r1).unwrap();
    assert_eq!(put_event(next(&watch)).value, b"1");
    assert_eq!(put_event(next(&watch)).mod_revision, r2);
    drop(watch);
    etcd.compact(r2).unwrap();
    // The history from r1 is gone: the watch says so, then goes on from now.
    let watch = etcd.watch_prefix(b"h/", r1).unwrap();
    assert_eq!(next(&watch), WatchEvent::Resync);
    let r3 = etcd.put(b"h/2", b"3", None).unwrap();
    let e = put_event(next(&watch));
    assert_eq!((e.key.as_slice(), e.mod_revision), (b"h/2".as_slice(), r3));
}

#[test]
fn every_operation_works_with_one_member_down() {
    let Some((mut cluster, etcd)) = cluster("every_operation_works_with_one_member_down") else {
        return;
    };
    // Member 0 is the first endpoint, the one tried first.
    etcd.put(b"f/before", b"1", None).unwrap();
    cluster.kill(0);
    cluster.wait_ready().unwrap();
    let status = etcd.status().unwrap();
    assert_ne!(status.endpoint, cluster.endpoint(0));
    assert_eq!(etcd.get(b"f/before").unwrap().unwrap().value, b"1");
    etcd.put(b"f/after", b"2", None).unwrap();
    assert_eq!(etcd.get_prefix(b"f/").unwrap().0.len(), 2);
    let lease = etcd.lease_grant(30).unwrap();
    assert!(etcd.lease_keepalive(lease.id).unwrap() > 0);
    let txn = Txn::new()
        .when([Compare::CreateRevision(b"f/t".to_vec(), CmpOp::Equal, 0)])
        .and_then([TxnOp::Put {
            key: b"f/t".to_vec(),
            value: b"t".to_vec(),
            lease: Some(lease.id),
        }]);
    assert!(etcd.txn(&txn).unwrap().succeeded);
    etcd.lease_revoke(lease.id).unwrap();
    assert_eq!(etcd.get(b"f/t").unwrap(), None);
    let watch = etcd.watch_prefix(b"f/", 0).unwrap();
    assert_eq!(etcd.delete(b"f/before").unwrap(), 1);
    assert_eq!(delete_event(next(&watch)).key, b"f/before");
    assert_eq!(etcd.delete_prefix(b"f/").unwrap(), 1);
}

#[test]
fn every_operation_is_unreachable_with_all_members_down() {
    let Some((mut cluster, etcd)) = cluster("every_operation_is_unreachable_with_all_members_down")
    else {
        return;
    };
    let lease = etcd.lease_grant(30).unwrap();
    cluster.kill_all();
    let unreachable = |what: &str, r: Result<(), EtcdError>| match r {
        Err(EtcdError::Unreachable { endpoints, .. }) => {
            for e in cluster.endpoints() {
                assert!(endpoints.contains(&e), "{what}: {endpoints} lacks {e}");
            }
        }
        other => panic!("{what} with every member down: {other:?}"),
    };
    unreachable("status", etcd.status().map(drop));
    unreachable("get", etcd.get(b"k").map(drop));
    unreachable("get_prefix", etcd.get_prefix(b"k").map(drop));
    unreachable("put", etcd.put(b"k", b"v", None).map(drop));
    unreachable("delete", etcd.delete(b"k").map(drop));
    unreachable("delete_prefix", etcd.delete_prefix(b"k").map(drop));
    unreachable("txn", etcd.txn(&Txn::new()).map(drop));
    unreachable("lease_grant", etcd.lease_grant(5).map(drop));
    unreachable("lease_keepalive", etcd.lease_keepalive(lease.id).map(drop));
    unreachable("lease_revoke", etcd.lease_revoke(lease.id));
    unreachable("watch_prefix", etcd.watch_prefix(b"k", 0).map(drop));
}

#[test]
fn a_restarted_member_rejoins_and_has_what_it_missed() {
    let Some((mut cluster, etcd)) = cluster("a_restarted_member_rejoins_and_has_what_it_missed")
    else {
        return;
    };
    cluster.kill(2);
    cluster.wait_ready().unwrap();
    let rev = etcd.put(b"missed", b"while down", None).unwrap();
    cluster.restart(2).unwrap();
    let only_2 = Etcd::new(&[cluster.endpoint(2)], TIMEOUT).unwrap();
    let status = only_2.status().unwrap();
    assert_ne!(status.leader, 0);
    assert!(status.revision >= rev);
    assert_eq!(only_2.get(b"missed").unwrap().unwrap().value, b"while down");
    only_2.put(b"from-2", b"", None).unwrap();
    assert!(etcd.get(b"from-2").unwrap().is_some());
}
