//! The seeded chaos run (tests/src/chaos/): faults injected every few seconds into the
//! mock cluster under a producer, a consumer group and a direct stream; then the
//! invariants. CI runs it with a fixed seed and a random one (printed); longer runs:
//! `scripts/chaos.sh --minutes N [--seed S]` (`CHAOS_SECONDS`, `CHAOS_SEED`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ferrokafka_tests::chaos::{run, Report};

fn seconds() -> u64 {
    std::env::var("CHAOS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(120)
}

fn check(r: &Report) {
    println!("{r}");
    for e in &r.errors {
        println!("  seen: {e}");
    }
    let replay = format!("replay: scripts/chaos.sh --seed {}", r.seed);
    assert!(r.acked > 1000, "too few records to mean anything: {} ({replay})", r.acked);
    assert!(r.panics.is_empty(), "the run's own clients panicked: {:?} ({replay})", r.panics);
    // Every fault is retriable for an idempotent producer with a 120 s delivery timeout.
    assert_eq!(r.failed, 0, "sends that failed for good ({replay})");
    assert_eq!(r.group_lost, 0, "acknowledged records the group never read ({replay})");
    assert_eq!(r.stream_lost, 0, "acknowledged records the stream never stored ({replay})");
    assert_eq!(r.stream_duplicates, 0, "records the stream stored twice ({replay})");
    assert_eq!(r.order_violations, 0, "records out of order ({replay})");
    // Every duplicate has a cause the run saw between its two reads (chaos/explain.rs).
    assert_eq!(r.unexplained, 0, "positions read twice without a cause seen ({replay})");
    assert!(r.recovery < Duration::from_secs(120), "no catch-up within 120 s of the last fault ({replay})");
    let armed = r.faults.get("answers cut mid-way").copied().unwrap_or(0);
    assert!(armed == 0 || r.cuts > 0, "{armed} cuts armed, none made: the relays are not in the path ({replay})");
    // Memory bounded by configuration, not by the data: the clients' RSS (without the
    // harness's ledger) grows by less than 128 MiB however long the run.
    let rss = r.clients_rss_kib();
    assert!(rss.1 <= rss.0 + 128 * 1024, "the clients' RSS grew: {rss:?} KiB ({replay})");
    let own = r.client_fds();
    assert!(own.1 <= own.0 + 32, "open file descriptors grew: {own:?} of {:?} ({replay})", r.fds);
    // Each client holds at most a general, a produce, a fetch and a group connection per
    // broker; between one minute in and the end that set may fill out, not grow past it.
    assert!(r.connections.1 <= r.connections.0 + 16, "client connections grew: {:?} ({replay})", r.connections);
}

#[test]
fn chaos_with_a_fixed_and_a_random_seed() {
    let fixed = std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(19);
    check(&run(fixed, Duration::from_secs(seconds())));
    if std::env::var("CHAOS_SEED").is_err() {
        let random = fastrand::u64(..);
        println!("random seed: {random}");
        check(&run(random, Duration::from_secs(seconds())));
    }
}
