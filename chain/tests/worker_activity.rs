//! A worker's activity from the chain's events (what recruitment learns its models from): the tasks
//! it completed and the models it listed, read by block range, and the spec CIDs of tasks by id.

mod common;

use common::{eth, world};
use drlaas_chain::{EnvKind, NewListing, alloy::primitives::B256};

#[tokio::test]
async fn completed_tasks_and_listings_are_read_per_worker_and_block_range() {
    let w = world().await;
    let m = &w.market;
    let (a, b) = (w.workers[0], w.workers[1]);
    let mut task = w.new_task("5").await;

    // Task 1: completed by a. Task 2: assigned to b and failed (not completed). Task 3: completed by b.
    let mut ids = Vec::new();
    for (i, worker, complete) in [(1, a, true), (2, b, false), (3, b, true)] {
        task.spec_cid = format!("bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4ye{i}");
        let (id, _) = m.post_task(w.requester, &task).await.unwrap();
        m.assign(w.oracle, id, worker, eth("5")).await.unwrap();
        if complete {
            m.submit_result(worker, id, "bafkreimodel", B256::repeat_byte(1))
                .await
                .unwrap();
            m.complete(w.oracle, id).await.unwrap();
        } else {
            m.fail(w.oracle, id, false).await.unwrap();
        }
        ids.push(id);
    }
    let middle = m.block_number().await.unwrap();
    let listing = NewListing {
        model_cid: "bafkreilisted".into(),
        env_kind: EnvKind::MazeCleaning,
        env_descriptor_hash: B256::repeat_byte(9),
        price: eth("0.1"),
        parent: None,
        royalty_bps: 500,
    };
    let (listed, _) = m.list_model(b, &listing).await.unwrap();
    let head = m.block_number().await.unwrap();

    let of_a = m.worker_activity(a, 0, head).await.unwrap();
    assert_eq!(of_a.completed.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [ids[0]]);
    assert!(of_a.listed.is_empty());

    let of_b = m.worker_activity(b, 0, head).await.unwrap();
    assert_eq!(
        of_b.completed.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [ids[2]],
        "a failed task is not a completed one"
    );
    assert_eq!(of_b.listed.len(), 1);
    let model = &of_b.listed[0];
    assert_eq!(
        (
            model.id,
            model.env_kind,
            model.env_descriptor_hash,
            model.model_cid.as_str(),
            model.block
        ),
        (
            listed,
            Some(EnvKind::MazeCleaning),
            B256::repeat_byte(9),
            "bafkreilisted",
            head
        )
    );

    // By block range: what is new after `middle` is the listing only; an empty range reads nothing.
    let later = m.worker_activity(b, middle + 1, head).await.unwrap();
    assert!(later.completed.is_empty());
    assert_eq!(later.listed.len(), 1);
    assert_eq!(m.worker_activity(b, head + 1, head).await.unwrap(), Default::default());
    let unregistered = m.worker_activity(w.others[0], 0, head).await.unwrap();
    assert_eq!(unregistered, Default::default());

    // Spec CIDs by task id, several at once; an id never posted is absent.
    let cids = m.task_spec_cids(&[ids[2], ids[0], 99]).await.unwrap();
    assert_eq!(cids.len(), 2);
    assert_eq!(cids[&ids[0]], m.task_spec_cid(ids[0]).await.unwrap());
    assert_eq!(cids[&ids[2]], m.task_spec_cid(ids[2]).await.unwrap());
    assert!(m.task_spec_cids(&[]).await.unwrap().is_empty());
}
