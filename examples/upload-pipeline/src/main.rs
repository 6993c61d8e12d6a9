//! upload-pipeline: clients upload files straight to a bucket with a presigned URL; each upload
//! becomes a job on a queue; a worker records the file in a table; the table's change stream
//! announces new files on a topic; a schedule deletes old uploads.
//!
//! ```text
//! POST /uploads ─▶ presign ─▶ {"url": presigned PUT, "key": "incoming/..."}
//! PUT url ─▶ uploads (bucket) ─ObjectCreated incoming/─▶ enqueue ─SQS─▶ jobs ─trigger─▶ worker
//!   worker ─PutItem─▶ files (table) ─change stream─▶ announce ─SNS─▶ processed ─▶ feed (a queue)
//! cleanup (a schedule, every day) ─▶ sweep (deletes uploads older than a day)
//! ```
//!
//! The functions use boto3 as on AWS: the bucket, queue, table and topic names come from the
//! components' outputs through environment variables, and `allow` grants the calls on `aws` (the
//! local cloud does not enforce IAM). See README.md for how to watch it work.

use skyform_sdk::{
    Bucket, Function, HttpApi, KeyType, Notification, ObjectEvent, Queue, QueueTrigger, Runtime, Schedule,
    Table, Topic, interpolate,
};

/// A Python function whose code is `functions/NAME/app.py`, function `handler`.
fn python(name: &str) -> Function {
    Function::new(name).code(format!("functions/{name}")).handler("app.handler").runtime(Runtime::Python3)
}

fn main() {
    skyform_sdk::run(|ctx| {
        let uploads = ctx.add(Bucket::new("uploads").force_destroy(true))?;
        let objects = interpolate!("{}/*", uploads.arn());
        let failed = ctx.add(Queue::new("jobs-failed"))?;
        // The visibility timeout stays above the worker's timeout, as Lambda requires.
        let jobs = ctx.add(Queue::new("jobs").visibility_timeout_secs(30).dead_letter(&failed, 3))?;
        let files = ctx.add(Table::new("files").hash_key("key", KeyType::String))?;
        let processed = ctx.add(Topic::new("processed"))?;
        let feed = ctx.add(Queue::new("feed"))?;

        let presign = ctx.add(
            python("presign")
                .env("UPLOADS_BUCKET", uploads.bucket_name())
                .allow(&["s3:PutObject"], objects.clone()),
        )?;
        let enqueue = ctx.add(
            python("enqueue").env("JOBS_QUEUE_URL", jobs.url()).allow(&["sqs:SendMessage"], jobs.arn()),
        )?;
        let worker = ctx.add(
            python("worker")
                .timeout_secs(10)
                .env("FILES_TABLE", files.table_name())
                .allow(&["s3:GetObject"], objects.clone())
                .allow(&["dynamodb:PutItem"], files.arn()),
        )?;
        let announce = ctx.add(
            python("announce")
                .env("PROCESSED_TOPIC_ARN", processed.arn())
                .allow(&["sns:Publish"], processed.arn()),
        )?;
        let sweep = ctx.add(
            python("sweep")
                .timeout_secs(60)
                .env("UPLOADS_BUCKET", uploads.bucket_name())
                .allow(&["s3:ListBucket"], uploads.arn())
                .allow(&["s3:DeleteObject"], objects),
        )?;

        let api = ctx.add(HttpApi::new("api").route("POST /uploads", &presign))?;
        uploads.notify(&enqueue, Notification::new(ObjectEvent::Created).prefix("incoming/"))?;
        jobs.subscribe_with(&worker, QueueTrigger::new().batch_size(10))?;
        files.on_change(&announce)?;
        processed.subscribe_queue(&feed)?;
        ctx.add(Schedule::rate("cleanup", "1 day", &sweep))?;

        ctx.export("url", api.url());
        ctx.export("bucket", uploads.bucket_name());
        ctx.export("table", files.table_name());
        ctx.export("feed_queue_url", feed.url());
        Ok(())
    })
}
