//! The event stream against a real anvil: confirmations, order, and a restart that neither misses nor
//! repeats an event.

mod common;

use common::{eth, world};
use drlaas_chain::{
    ChainEvent, EventStream, Market, MarketEvent, StreamConfig,
    alloy::primitives::keccak256,
    bindings::TMC,
    cursor::{CursorStore, FileCursor, MemoryCursor},
};
use std::time::Duration;

fn config(confirmations: u64) -> StreamConfig {
    StreamConfig {
        confirmations,
        poll_interval: Duration::from_millis(10),
        max_blocks_per_query: 3,
        ..Default::default()
    }
}

/// Drain every event confirmed now, acknowledging each.
async fn drain<C: CursorStore>(stream: &mut EventStream<C>, market: &Market, confirmations: u64) -> Vec<ChainEvent> {
    let safe = market.block_number().await.unwrap().saturating_sub(confirmations);
    let mut out = Vec::new();
    loop {
        match stream.try_next().await.unwrap() {
            Some(ev) => {
                stream.ack(&ev).await.unwrap();
                out.push(ev);
            }
            None if stream.cursor().scanned_through >= Some(safe) => return out,
            None => {}
        }
    }
}

#[tokio::test]
async fn resumed_stream_neither_misses_nor_repeats() {
    let w = world().await;
    let m = &w.market;
    let dir = tempfile::tempdir().unwrap();
    let cursor_path = dir.path().join("cursor.json");

    // Everything so far: deployment wiring, oracle, three worker registrations.
    let mut all = Vec::new();
    let mut stream = EventStream::open(
        m.provider().clone(),
        *m.deployment(),
        config(0),
        FileCursor::new(&cursor_path),
    )
    .await
    .unwrap();
    all.extend(drain(&mut stream, m, 0).await);
    let before_tasks = all.len();
    assert!(
        before_tasks >= 5,
        "deployment and registrations emit events, got {before_tasks}"
    );

    // Three tasks; the consumer stops half-way through the second (after acknowledging some events).
    for _ in 0..3 {
        let (id, _) = m.post_task(w.requester, &w.new_task("1").await).await.unwrap();
        m.assign(w.oracle, id, w.workers[0], eth("1")).await.unwrap();
        m.submit_result(w.workers[0], id, "bafy", keccak256(b"r"))
            .await
            .unwrap();
        m.complete(w.oracle, id).await.unwrap();
    }
    for _ in 0..4 {
        let ev = stream.next().await.unwrap();
        stream.ack(&ev).await.unwrap();
        all.push(ev);
    }
    // An unacknowledged event is delivered again, to this stream and to a restarted one.
    let unacked = stream.next().await.unwrap();
    assert_eq!(stream.next().await.unwrap(), unacked);
    drop(stream);

    let mut resumed = EventStream::open(
        m.provider().clone(),
        *m.deployment(),
        config(0),
        FileCursor::new(&cursor_path),
    )
    .await
    .unwrap();
    assert_eq!(resumed.next().await.unwrap(), unacked);
    all.extend(drain(&mut resumed, m, 0).await);

    // Compare with a single uninterrupted reader from the start.
    let mut fresh = EventStream::open(
        m.provider().clone(),
        *m.deployment(),
        config(0),
        MemoryCursor::default(),
    )
    .await
    .unwrap();
    let fresh = drain(&mut fresh, m, 0).await;
    assert_eq!(all, fresh, "restart must neither miss nor repeat an event");
    let positions: Vec<_> = all.iter().map(|e| e.position).collect();
    assert!(positions.windows(2).all(|p| p[0] < p[1]), "events are in chain order");
    let completed = all
        .iter()
        .filter(|e| matches!(e.event, MarketEvent::Tmc(TMC::TMCEvents::TaskCompleted(_))))
        .count();
    assert_eq!(completed, 3);
    assert!(all.iter().any(|e| e.event.name() == "TaskPosted"));
}

#[tokio::test]
async fn events_wait_for_confirmations() {
    let w = world().await;
    let m = &w.market;
    let mut stream = EventStream::open(
        m.provider().clone(),
        *m.deployment(),
        config(3),
        MemoryCursor::default(),
    )
    .await
    .unwrap();
    drain(&mut stream, m, 3).await;
    w.devnet.mine(3).await.unwrap();
    drain(&mut stream, m, 3).await; // everything before the task is now confirmed and consumed

    let (id, _) = m.post_task(w.requester, &w.new_task("1").await).await.unwrap();
    assert!(
        stream.try_next().await.unwrap().is_none(),
        "0 confirmations: not delivered"
    );
    w.devnet.mine(2).await.unwrap();
    assert!(
        stream.try_next().await.unwrap().is_none(),
        "2 confirmations: not delivered"
    );
    assert_eq!(
        stream.head(),
        Some(m.block_number().await.unwrap()),
        "the head it read, confirmations not subtracted"
    );
    w.devnet.mine(1).await.unwrap();
    let ev = stream.try_next().await.unwrap().expect("3 confirmations: delivered");
    match ev.event {
        MarketEvent::Tmc(TMC::TMCEvents::TaskPosted(p)) => {
            assert_eq!(p.taskId.to::<u64>(), id);
            assert_eq!(p.budget, eth("1"));
        }
        other => panic!("expected TaskPosted, got {other:?}"),
    }
}

#[tokio::test]
async fn cursor_of_another_deployment_is_refused() {
    let w = world().await;
    let m = &w.market;
    let cursor = MemoryCursor::default();
    let mut stream = EventStream::open(m.provider().clone(), *m.deployment(), config(0), cursor.clone())
        .await
        .unwrap();
    drain(&mut stream, m, 0).await;
    let mut other = *m.deployment();
    other.tmc = w.others[0];
    let err = EventStream::open(m.provider().clone(), other, config(0), cursor)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not to this deployment"), "{err}");
}

#[tokio::test]
async fn a_long_quiet_history_is_crossed_in_one_call() {
    let w = world().await;
    let m = &w.market;
    let mut stream = EventStream::open(
        m.provider().clone(),
        *m.deployment(),
        config(0),
        MemoryCursor::default(),
    )
    .await
    .unwrap();
    drain(&mut stream, m, 0).await;
    w.devnet.mine(60).await.unwrap(); // 20 empty ranges of 3 blocks
    let (id, _) = m.post_task(w.requester, &w.new_task("1").await).await.unwrap();
    let ev = stream.try_next().await.unwrap().expect("delivered by a single call");
    assert_eq!(ev.event.name(), "TaskPosted");
    assert!(matches!(ev.event, MarketEvent::Tmc(TMC::TMCEvents::TaskPosted(ref p)) if p.taskId.to::<u64>() == id));
}

#[tokio::test]
async fn deferred_acknowledgements_are_saved_once_per_batch_and_redelivered_after_a_restart() {
    let w = world().await;
    let m = &w.market;
    let dir = tempfile::tempdir().unwrap();
    let cursor_path = dir.path().join("cursor.json");
    let open = || {
        EventStream::open(
            m.provider().clone(),
            *m.deployment(),
            StreamConfig {
                max_blocks_per_query: 1_000,
                ..config(0)
            },
            FileCursor::new(&cursor_path),
        )
    };
    let mut stream = open().await.unwrap();
    drain(&mut stream, m, 0).await;
    let saved = std::fs::read_to_string(&cursor_path).unwrap();

    for _ in 0..2 {
        let (id, _) = m.post_task(w.requester, &w.new_task("1").await).await.unwrap();
        m.assign(w.oracle, id, w.workers[0], eth("1")).await.unwrap();
    }
    // Two of the new events acknowledged without a save: the stored cursor has not moved, and a
    // restarted stream delivers them again (at least once, never lost).
    let first = stream.next().await.unwrap();
    stream.ack_deferred(&first).await.unwrap();
    let second = stream.next().await.unwrap();
    stream.ack_deferred(&second).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&cursor_path).unwrap(),
        saved,
        "no write per event"
    );
    drop(stream);
    let mut resumed = open().await.unwrap();
    assert_eq!(resumed.next().await.unwrap(), first, "redelivered after a restart");
    // The batch's last deferred acknowledgement saves the cursor.
    let mut last = first;
    resumed.ack_deferred(&last).await.unwrap();
    while let Some(ev) = resumed.try_next().await.unwrap() {
        resumed.ack_deferred(&ev).await.unwrap();
        last = ev;
    }
    drop(resumed);
    let again = open().await.unwrap();
    assert_eq!(
        again.cursor().last_acked,
        Some(last.position),
        "saved at the end of the batch"
    );
}
