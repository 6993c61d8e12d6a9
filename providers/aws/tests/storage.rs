//! S3 buckets and notifications, and DynamoDB tables, against moto through the protocol.

mod common;

use common::{Provider, import_find_delete, moto};
use serde_json::json;

#[test]
fn bucket_full_lifecycle() {
    let mut p = Provider::moto(json!({}));
    let ty = "aws:s3:Bucket";
    let f = p.check_failures(ty, json!({"name": "Not_Valid"}));
    assert!(f[0]["reason"].as_str().unwrap().contains("not a valid bucket name"), "{f:?}");
    let inputs = p.check(ty, "Uploads", json!({}), None);
    let name = inputs["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("uploads-"), "bucket names are lowercased: {name}");
    let (id, out) = p.create(ty, "Uploads", &inputs);
    assert_eq!(out["arn"], format!("arn:aws:s3:::{name}"));
    assert_eq!(p.read(ty, Some(&id), &inputs)["inputs"], inputs);

    let mut news = inputs.clone();
    news["versioning"] = json!(true);
    news["force_destroy"] = json!(true);
    assert_eq!(p.diff(ty, &id, &inputs, &news)["replaces"], json!([]));
    p.update(ty, &id, &inputs, &news);
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"], news);

    moto().py(&format!(
        "c = client('s3'); c.put_bucket_versioning(Bucket='{id}', VersioningConfiguration={{'Status': 'Suspended'}}); \
         c.put_object(Bucket='{id}', Key='a/b.txt', Body=b'x')"
    ));
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"]["versioning"], false);

    // A new name: create the new bucket, then delete the old one (with its object).
    let renamed = p.check(ty, "Uploads", json!({"name": format!("{name}-b")}), None);
    let d = p.diff(ty, &id, &news, &renamed);
    assert!(d["replaces"].as_array().unwrap().contains(&json!("name")));
    assert_eq!(d["delete_before_replace"], false);
    let (id2, _) = p.create(ty, "Uploads", &renamed);
    p.delete(ty, &id, &news);
    assert!(p.read(ty, Some(&id), &news).is_null());

    // Without force_destroy a non-empty bucket refuses, saying what to do.
    moto().py(&format!("client('s3').put_object(Bucket='{id2}', Key='k', Body=b'x')"));
    let e = p
        .call("delete", json!({"type": ty, "name": "Uploads", "id": id2, "inputs": renamed, "outputs": {}}))
        .unwrap_err();
    assert!(e.message.contains("BucketNotEmpty") && e.message.contains("force_destroy"), "{e:?}");
    moto().py(&format!("client('s3').delete_object(Bucket='{id2}', Key='k')"));
    import_find_delete(&mut p, ty, &id2, &renamed);
}

#[test]
fn bucket_notification_full_lifecycle() {
    let mut p = Provider::moto(json!({}));
    let bucket = p.check("aws:s3:Bucket", "events", json!({"force_destroy": true}), None);
    let (bucket_id, _) = p.create("aws:s3:Bucket", "events", &bucket);
    let queue = p.check("aws:sqs:Queue", "uploads", json!({}), None);
    let (queue_url, queue_out) = p.create("aws:sqs:Queue", "uploads", &queue);
    let queue_arn = queue_out["arn"].as_str().unwrap().to_string();

    let ty = "aws:s3:BucketNotification";
    let inputs = p.check(
        ty,
        "on-upload",
        json!({"bucket": bucket_id, "queues": [{"arn": queue_arn, "events": ["s3:ObjectCreated:*"], "filter_prefix": "in/"}]}),
        None,
    );
    let (id, _) = p.create(ty, "on-upload", &inputs);
    assert_eq!(id, bucket_id);
    assert_eq!(p.read(ty, Some(&id), &inputs)["inputs"], inputs);

    // moto really delivers S3 events to SQS: the notification works end to end.
    let got = moto().py(&format!(
        "client('s3').put_object(Bucket='{bucket_id}', Key='in/x.txt', Body=b'x')\n\
         msgs = client('sqs').receive_message(QueueUrl='{queue_url}', WaitTimeSeconds=1, MaxNumberOfMessages=10).get('Messages', [])\n\
         print(any('in%2Fx.txt' in m['Body'] for m in msgs))"
    ));
    // (keys arrive URL-encoded, as AWS sends them)
    assert!(got.ends_with("True"), "the S3 event reached the queue: {got}");

    let mut news = inputs.clone();
    news["queues"][0]["events"] = json!(["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]);
    news["queues"][0]["filter_suffix"] = json!(".txt");
    assert_eq!(p.diff(ty, &id, &inputs, &news)["replaces"], json!([]));
    p.update(ty, &id, &inputs, &news);
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"], news);

    // Removed behind skyform's back: it reads as gone.
    moto().py(&format!("client('s3').put_bucket_notification_configuration(Bucket='{bucket_id}', NotificationConfiguration={{}})"));
    assert!(p.read(ty, Some(&id), &news).is_null());
    p.update(ty, &id, &inputs, &news);

    // Another bucket is another resource; the identity is the bucket, so the old one goes first
    // only when the bucket stays (it does not here).
    let other = p.check(ty, "on-upload", json!({"bucket": "elsewhere", "queues": news["queues"]}), None);
    let d = p.diff(ty, &id, &news, &other);
    assert_eq!(
        (d["replaces"].clone(), d["delete_before_replace"].clone()),
        (json!(["bucket"]), json!(false))
    );
    import_find_delete(&mut p, ty, &id, &news);
    p.delete("aws:s3:Bucket", &bucket_id, &bucket);
    p.delete("aws:sqs:Queue", &queue_url, &queue);
}

#[test]
fn table_full_lifecycle() {
    let mut p = Provider::moto(json!({}));
    let ty = "aws:dynamodb:Table";
    let f = p.check_failures(ty, json!({"hash_key": "pk", "billing_mode": "PROVISIONED"}));
    assert_eq!(f.len(), 2, "capacities are required with PROVISIONED: {f:?}");
    let inputs = p.check(ty, "orders", json!({"hash_key": "pk", "range_key": "sk"}), None);
    assert_eq!((inputs["hash_key_type"].clone(), inputs["range_key_type"].clone()), (json!("S"), json!("S")));
    let (id, out) = p.create(ty, "orders", &inputs);
    assert_eq!(out["arn"], format!("arn:aws:dynamodb:us-east-1:123456789012:table/{id}"));
    assert_eq!(p.read(ty, Some(&id), &inputs)["inputs"], inputs);

    let mut news = inputs.clone();
    news["billing_mode"] = json!("PROVISIONED");
    news["read_capacity"] = json!(5);
    news["write_capacity"] = json!(5);
    news["ttl_attribute"] = json!("expires");
    let d = p.diff(ty, &id, &inputs, &news);
    assert_eq!(d["replaces"], json!([]));
    p.update(ty, &id, &inputs, &news);
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"], news);

    moto().py(&format!(
        "client('dynamodb').update_table(TableName='{id}', ProvisionedThroughput={{'ReadCapacityUnits': 9, 'WriteCapacityUnits': 5}})"
    ));
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"]["read_capacity"], 9);
    news["read_capacity"] = json!(9);

    // A new key schema under the same name: replaced, deleting first.
    let mut rekeyed = news.clone();
    rekeyed["range_key"] = json!("created_at");
    rekeyed["range_key_type"] = json!("N");
    let d = p.diff(ty, &id, &news, &rekeyed);
    assert_eq!(d["replaces"], json!(["range_key", "range_key_type"]));
    assert_eq!(d["delete_before_replace"], true);
    p.delete(ty, &id, &news);
    assert!(p.read(ty, Some(&id), &news).is_null());
    let (id2, _) = p.create(ty, "orders", &rekeyed);
    assert_eq!(id2, id);
    assert_eq!(p.read(ty, Some(&id), &rekeyed)["inputs"], rekeyed);
    import_find_delete(&mut p, ty, &id2, &rekeyed);
}
