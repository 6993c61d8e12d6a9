//! SQS queues against moto, through the protocol.

mod common;

use common::{Provider, import_find_delete, moto};
use serde_json::json;

#[test]
fn queue_full_lifecycle_with_redrive() {
    let mut p = Provider::moto(json!({}));
    let ty = "aws:sqs:Queue";
    let dlq = p.check(ty, "jobs-dlq", json!({}), None);
    let (dlq_id, dlq_out) = p.create(ty, "jobs-dlq", &dlq);
    assert!(dlq_id.ends_with(dlq["name"].as_str().unwrap()), "{dlq_id}");

    let inputs = p.check(
        ty,
        "jobs",
        json!({"visibility_timeout_seconds": 60,
               "redrive_policy": {"dead_letter_target_arn": dlq_out["arn"], "max_receive_count": 5}}),
        None,
    );
    let (id, outputs) = p.create(ty, "jobs", &inputs);
    assert_eq!(outputs["name"], inputs["name"]);
    assert_eq!(p.read(ty, Some(&id), &inputs)["inputs"], inputs, "no drift after create");

    // In place: timeout and redrive count.
    let mut news = inputs.clone();
    news["visibility_timeout_seconds"] = json!(120);
    news["redrive_policy"]["max_receive_count"] = json!(3);
    let d = p.diff(ty, &id, &inputs, &news);
    assert_eq!(
        (d["changed"].clone(), d["replaces"].clone()),
        (json!(["redrive_policy", "visibility_timeout_seconds"]), json!([]))
    );
    p.update(ty, &id, &inputs, &news);
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"], news);

    // Drift.
    moto().py(&format!(
        "client('sqs').set_queue_attributes(QueueUrl='{id}', Attributes={{'DelaySeconds': '7'}})"
    ));
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"]["delay_seconds"], 7);

    // Becoming FIFO forces a replacement under a new (.fifo) name: create first.
    let fifo = p.check(ty, "jobs", json!({"fifo_queue": true, "content_based_deduplication": true}), None);
    assert!(fifo["name"].as_str().unwrap().ends_with(".fifo"), "{fifo}");
    let d = p.diff(ty, &id, &news, &fifo);
    assert!(d["replaces"].as_array().unwrap().contains(&json!("fifo_queue")), "{d}");
    assert_eq!(d["delete_before_replace"], false);
    let (fifo_id, _) = p.create(ty, "jobs", &fifo);
    p.delete(ty, &id, &news);
    assert!(p.read(ty, Some(&id), &news).is_null());
    assert_eq!(p.read(ty, Some(&fifo_id), &fifo)["inputs"], fifo);
    import_find_delete(&mut p, ty, &fifo_id, &fifo);
    p.delete(ty, &dlq_id, &dlq);
}
