//! Concurrent transactions of one account, from many clients at once, against a real anvil: each
//! gets its own nonce (none is refused as "nonce too low", none replaces another).

mod common;

use std::sync::Arc;

use common::world;
use drlaas_chain::{Market, TaskStatus, devnet};

#[tokio::test]
async fn concurrent_posts_of_one_requester_from_separate_clients_all_land() {
    let w = world().await;
    let signer = w.devnet.signers()[2].clone();
    assert_eq!(signer.address(), w.requester);
    let task = w.new_task("1").await;
    // One client per post, as the operator makes one per reconcile of a task: only the account
    // is shared.
    let posts = (0..16).map(|_| {
        let client = Arc::new(Market::connect(
            w.devnet.provider(),
            devnet::wallet([signer.clone()]),
            *w.market.deployment(),
        ));
        let task = task.clone();
        let requester = w.requester;
        tokio::spawn(async move { client.post_task(requester, &task).await })
    });
    let mut ids = Vec::new();
    for post in posts.collect::<Vec<_>>() {
        let (id, _) = post.await.unwrap().expect("every concurrent post lands");
        ids.push(id);
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=16).collect::<Vec<u64>>(), "16 posts, 16 tasks");
    assert_eq!(w.market.task_count().await.unwrap(), 16);
    for id in ids {
        assert_eq!(w.market.task(id).await.unwrap().status, TaskStatus::Posted);
    }
}
