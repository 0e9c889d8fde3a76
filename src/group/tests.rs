//! The group state machine as plain functions: joins, syncs, heartbeats, leaves and
//! expiry, with an explicit clock.

use bytes::Bytes;

use super::consumer_protocol::parse_subscription;
use super::group::*;

const LIMITS: GroupLimits = GroupLimits {
    min_session_timeout_ms: 1000,
    max_session_timeout_ms: 300_000,
    initial_rebalance_delay_ms: 0,
};

fn join_req(member: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member.to_string(),
        instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(format!("meta-{member}-{p}"))))
            .collect(),
        require_known_member_id: true,
    }
}

/// Joins a brand-new member through MEMBER_ID_REQUIRED; returns (member id, outcome).
fn join_new(g: &mut Group, now: i64) -> (String, Option<JoinOutcome>, Vec<Effect>) {
    let (_, first, _) = g.join(now, join_req("", &["range"]), &LIMITS);
    let first = first.unwrap();
    assert_eq!(first.error, code::MEMBER_ID_REQUIRED);
    let id = first.member_id.clone();
    let (joined_as, out, effects) = g.join(now, join_req(&id, &["range"]), &LIMITS);
    assert_eq!(joined_as, id);
    (id, out, effects)
}

#[test]
fn a_single_member_becomes_leader_and_gets_its_assignment() {
    let mut g = Group::new("g");
    let (id, out, _) = join_new(&mut g, 0);
    let out = out.expect("one member completes the rebalance at once");
    assert_eq!(
        (out.error, out.generation, out.leader.as_str()),
        (code::NONE, 1, id.as_str())
    );
    assert_eq!(out.members.len(), 1);
    assert_eq!(g.state, State::CompletingRebalance);
    let (sync, _) = g.sync(
        1,
        &id,
        &None,
        1,
        vec![(id.clone(), Bytes::from_static(b"all"))],
    );
    assert_eq!(sync.unwrap().assignment, Bytes::from_static(b"all"));
    assert_eq!(g.state, State::Stable);
    assert_eq!(g.heartbeat(2, &id, &None, 1), code::NONE);
}

#[test]
fn a_second_member_triggers_a_rebalance_that_waits_for_the_first() {
    let mut g = Group::new("g");
    let (a, _, _) = join_new(&mut g, 0);
    g.sync(
        0,
        &a,
        &None,
        1,
        vec![(a.clone(), Bytes::from_static(b"a:0-5"))],
    );
    let (b, out_b, _) = join_new(&mut g, 10);
    assert!(out_b.is_none(), "b waits for a to rejoin");
    assert_eq!(g.state, State::PreparingRebalance);
    assert_eq!(g.heartbeat(20, &a, &None, 1), code::REBALANCE_IN_PROGRESS);
    let (_, out_a, effects) = g.join(30, join_req(&a, &["range"]), &LIMITS);
    let out_a = out_a.unwrap();
    assert_eq!(out_a.generation, 2);
    assert_eq!(out_a.leader, a, "the leader stays the leader");
    assert_eq!(out_a.members.len(), 2);
    let b_out = effects.iter().find_map(|e| match e {
        Effect::Join(id, o) if *id == b => Some(o.clone()),
        _ => None,
    });
    assert_eq!(
        b_out.unwrap().members.len(),
        0,
        "followers get no member list"
    );
    // The follower's sync waits for the leader's.
    let (none, _) = g.sync(40, &b, &None, 2, vec![]);
    assert!(none.is_none());
    let (mine, effects) = g.sync(
        50,
        &a,
        &None,
        2,
        vec![
            (a.clone(), Bytes::from_static(b"A")),
            (b.clone(), Bytes::from_static(b"B")),
        ],
    );
    assert_eq!(mine.unwrap().assignment, Bytes::from_static(b"A"));
    assert_eq!(
        effects,
        vec![Effect::Sync(
            b.clone(),
            SyncOutcome {
                error: code::NONE,
                assignment: Bytes::from_static(b"B"),
                protocol_type: Some("consumer".into()),
                protocol: Some("range".into()),
            }
        )]
    );
    // Old generations are refused.
    assert_eq!(g.heartbeat(60, &b, &None, 1), code::ILLEGAL_GENERATION);
    assert_eq!(g.heartbeat(60, "nobody", &None, 2), code::UNKNOWN_MEMBER_ID);
}

#[test]
fn a_silent_member_expires_and_the_rest_rebalance() {
    let mut g = Group::new("g");
    let (a, _, _) = join_new(&mut g, 0);
    let (b, _, _) = join_new(&mut g, 0);
    g.join(0, join_req(&a, &["range"]), &LIMITS);
    g.sync(0, &a, &None, 2, vec![]);
    g.sync(0, &b, &None, 2, vec![]);
    assert_eq!(g.state, State::Stable);
    // a keeps heartbeating, b goes silent.
    for t in (1000..=11_000).step_by(1000) {
        assert_eq!(g.heartbeat(t, &a, &None, 2), code::NONE);
    }
    let (expired, _) = g.tick(11_001, &LIMITS);
    assert_eq!(expired, vec![b.clone()]);
    assert_eq!(g.state, State::PreparingRebalance);
    let (_, out, _) = g.join(11_002, join_req(&a, &["range"]), &LIMITS);
    assert_eq!(out.unwrap().generation, 3);
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_deadline() {
    let mut g = Group::new("g");
    let (a, _, _) = join_new(&mut g, 0);
    let (b, waiting, _) = join_new(&mut g, 100);
    assert!(waiting.is_none());
    // a keeps heartbeating but never rejoins: after the rebalance timeout (30 s) b
    // completes alone.
    for t in (1000..30_100).step_by(1000) {
        assert_eq!(g.heartbeat(t, &a, &None, 1), code::REBALANCE_IN_PROGRESS);
    }
    let (expired, effects) = g.tick(100 + 30_000, &LIMITS);
    assert!(expired.is_empty());
    let out = effects.iter().find_map(|e| match e {
        Effect::Join(id, o) if *id == b => Some(o.clone()),
        _ => None,
    });
    assert_eq!(out.unwrap().leader, b);
    assert!(!g.members.contains_key(&a));
}

#[test]
fn leave_and_protocol_checks() {
    let mut g = Group::new("g");
    let (a, _, _) = join_new(&mut g, 0);
    let mut other = join_req("", &["roundrobin"]);
    other.require_known_member_id = false;
    let (_, out, _) = g.join(1, other, &LIMITS);
    assert_eq!(out.unwrap().error, code::INCONSISTENT_GROUP_PROTOCOL);
    let mut bad = join_req("", &["range"]);
    bad.session_timeout_ms = 10;
    assert_eq!(
        g.join(1, bad, &LIMITS).1.unwrap().error,
        code::INVALID_SESSION_TIMEOUT
    );
    assert_eq!(
        g.join(1, join_req("made-up", &["range"]), &LIMITS)
            .1
            .unwrap()
            .error,
        code::UNKNOWN_MEMBER_ID
    );
    assert_eq!(g.leave(2, &a, &None, &LIMITS).0, code::NONE);
    assert_eq!(g.state, State::Empty);
    assert_eq!(g.leave(3, &a, &None, &LIMITS).0, code::UNKNOWN_MEMBER_ID);
}

#[test]
fn an_old_client_without_member_id_round_joins_and_waits_under_its_new_id() {
    let mut g = Group::new("g");
    let (a, _, _) = join_new(&mut g, 0);
    let mut old = join_req("", &["range"]);
    old.require_known_member_id = false; // JoinGroup v0-v3
    let (b, waiting, _) = g.join(5, old, &LIMITS);
    assert!(waiting.is_none());
    assert!(
        g.members[&b].awaiting_join,
        "the generated id is the one that waits"
    );
    let (_, _, effects) = g.join(6, join_req(&a, &["range"]), &LIMITS);
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::Join(id, o) if *id == b && o.generation == 2)));
}

#[test]
fn the_most_preferred_common_protocol_wins() {
    let mut g = Group::new("g");
    let mut a = join_req("", &["cooperative-sticky", "range"]);
    a.require_known_member_id = false;
    let (_, out, _) = g.join(0, a, &LIMITS);
    assert_eq!(out.unwrap().protocol.as_deref(), Some("cooperative-sticky"));
}

#[test]
fn a_static_member_rejoining_keeps_its_place_and_fences_the_old_id() {
    let mut g = Group::new("g");
    let mut a = join_req("", &["range"]);
    a.instance_id = Some("host-1".into());
    let (_, out, _) = g.join(0, a.clone(), &LIMITS);
    let out = out.unwrap();
    assert_eq!(
        out.error,
        code::NONE,
        "static members need no MEMBER_ID_REQUIRED round"
    );
    let old = out.member_id.clone();
    g.sync(
        0,
        &old,
        &a.instance_id,
        1,
        vec![(old.clone(), Bytes::from_static(b"P0"))],
    );
    // Restarted process: same instance id, no member id.
    let (_, again, _) = g.join(10, a.clone(), &LIMITS);
    let again = again.unwrap();
    assert_ne!(again.member_id, old);
    assert_eq!(g.members.len(), 1);
    assert_eq!(
        g.heartbeat(20, &old, &a.instance_id, again.generation),
        code::FENCED_INSTANCE_ID
    );
}

#[test]
fn a_restarted_static_follower_rejoins_without_a_rebalance() {
    let mut g = Group::new("g");
    let (leader, _, _) = join_new(&mut g, 0);
    let mut f = join_req("", &["range"]);
    f.instance_id = Some("host-2".into());
    let (fid, waiting, _) = g.join(1, f.clone(), &LIMITS);
    assert!(waiting.is_none());
    let (_, _, _) = g.join(2, join_req(&leader, &["range"]), &LIMITS);
    g.sync(
        3,
        &leader,
        &None,
        2,
        vec![
            (leader.clone(), Bytes::from_static(b"L")),
            (fid.clone(), Bytes::from_static(b"F")),
        ],
    );
    g.sync(3, &fid, &f.instance_id, 2, vec![]);
    assert_eq!(g.state, State::Stable);
    // The follower's process restarts with the same instance id.
    let (new_id, out, effects) = g.join(10, f.clone(), &LIMITS);
    let out = out.unwrap();
    assert_eq!(
        (out.error, out.generation),
        (code::NONE, 2),
        "same generation: no rebalance"
    );
    assert!(effects.is_empty());
    assert_eq!(g.state, State::Stable);
    assert_eq!(
        g.sync(11, &new_id, &f.instance_id, 2, vec![])
            .0
            .unwrap()
            .assignment,
        Bytes::from_static(b"F")
    );
    assert_eq!(
        g.heartbeat(12, &leader, &None, 2),
        code::NONE,
        "the leader is not disturbed"
    );
    assert_eq!(
        g.heartbeat(12, &fid, &f.instance_id, 2),
        code::FENCED_INSTANCE_ID
    );
}

#[test]
fn a_restarted_static_leader_keeps_the_generation_and_skips_assignment() {
    let mut g = Group::new("g");
    let mut l = join_req("", &["range"]);
    l.instance_id = Some("host-1".into());
    let (lid, out, _) = g.join(0, l.clone(), &LIMITS);
    assert_eq!(out.unwrap().leader, lid);
    g.sync(
        1,
        &lid,
        &l.instance_id,
        1,
        vec![(lid.clone(), Bytes::from_static(b"L"))],
    );
    let (new_id, out, _) = g.join(5, l.clone(), &LIMITS);
    let out = out.unwrap();
    assert_eq!(
        (out.generation, out.leader.as_str(), out.skip_assignment),
        (1, new_id.as_str(), true)
    );
    assert_eq!(out.members.len(), 1);
    assert_eq!(
        g.sync(6, &new_id, &l.instance_id, 1, vec![])
            .0
            .unwrap()
            .assignment,
        Bytes::from_static(b"L")
    );
}

#[test]
fn subscriptions_are_read_from_consumer_metadata() {
    // version 1, ["logs", "metrics"], user data
    let mut meta = vec![0, 1, 0, 0, 0, 2, 0, 4];
    meta.extend(b"logs");
    meta.extend([0, 7]);
    meta.extend(b"metrics");
    meta.extend([0xff, 0xff, 0xff, 0xff]);
    assert_eq!(
        parse_subscription(&meta),
        vec!["logs".to_string(), "metrics".to_string()]
    );
    assert!(parse_subscription(&[0, 1, 0x7f, 0xff, 0xff, 0xff]).is_empty());
}

#[test]
fn a_restored_group_goes_on_without_a_rebalance() {
    let mut g = Group::new("g");
    let (id, _, _) = join_new(&mut g, 0);
    g.sync(
        1,
        &id,
        &None,
        1,
        vec![(id.clone(), Bytes::from_static(b"all"))],
    );
    assert_eq!(g.state, State::Stable);
    let stored = g.to_stored(2).expect("a Stable group is recorded");
    assert_eq!(stored.members[0].assignment, Bytes::from_static(b"all"));
    // The broker restarts: the group comes back Stable at its generation, and its
    // member heartbeats, syncs and sees its assignment without rejoining.
    let mut back = Group::restore("g", &stored, 10_000);
    assert_eq!((back.state, back.generation), (State::Stable, 1));
    assert_eq!(back.record_fingerprint(), g.record_fingerprint());
    assert_eq!(back.heartbeat(10_001, &id, &None, 1), code::NONE);
    let (sync, _) = back.sync(10_002, &id, &None, 1, vec![]);
    assert_eq!(sync.unwrap().assignment, Bytes::from_static(b"all"));
    // An old generation is told so; a member that never heartbeats again expires.
    assert_eq!(
        back.heartbeat(10_003, &id, &None, 0),
        code::ILLEGAL_GENERATION
    );
    let (expired, _) = back.tick(10_003 + 11_000, &LIMITS);
    assert_eq!(expired, vec![id]);
}

#[test]
fn records_are_kept_only_for_states_kafka_records() {
    let mut g = Group::new("g");
    assert!(
        g.to_stored(0).is_none() && g.record_fingerprint().is_none(),
        "never had members"
    );
    let (id, _, _) = join_new(&mut g, 0);
    assert!(
        g.record_fingerprint().is_none(),
        "in the middle of a rebalance"
    );
    g.sync(1, &id, &None, 1, vec![]);
    let stable = g.record_fingerprint().unwrap();
    g.leave(2, &id, &None, &LIMITS);
    g.tick(3, &LIMITS);
    assert_eq!(g.state, State::Empty);
    let empty = g.to_stored(4).unwrap();
    assert!(empty.members.is_empty() && empty.leader.is_none());
    assert_ne!(g.record_fingerprint(), Some(stable));
    // An empty record restores to an empty group at its generation.
    let back = Group::restore("g", &empty, 5);
    assert_eq!((back.state, back.generation), (State::Empty, g.generation));
    // A record whose leader is not among its members restores empty.
    let mut odd = stable_record_of_one_member();
    odd.leader = Some("ghost".into());
    assert_eq!(Group::restore("g", &odd, 7).state, State::Empty);
}

fn stable_record_of_one_member() -> super::metadata_record::StoredGroup {
    let mut g = Group::new("g");
    let (id, _, _) = join_new(&mut g, 0);
    g.sync(1, &id, &None, 1, vec![]);
    g.to_stored(2).unwrap()
}
