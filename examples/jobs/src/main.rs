//! jobs: an HTTP API that enqueues work, a worker that processes it and announces the result on
//! a topic, two subscribers of that topic, and a schedule.
//!
//! ```text
//! POST /jobs ─▶ submit ─SQS─▶ jobs ─trigger─▶ worker ─SNS─▶ done ─┬─▶ notify  (a function)
//!                              └─ after 3 failed receives ─▶ jobs-failed   └─▶ audit   (a queue)
//! cleanup (a schedule, every hour) ─▶ sweep (reports the dead-lettered jobs)
//! ```
//!
//! The functions talk to the queue and the topic with boto3, as on AWS: their URL and ARN come
//! from the components' outputs through environment variables, and `allow` grants the calls on
//! `aws` (the local cloud does not enforce IAM). See README.md for how to watch it work.

use skyform_sdk::{Function, HttpApi, Queue, QueueTrigger, Runtime, Schedule, Topic};

/// A Python function whose code is `functions/NAME/app.py`, function `handler`.
fn python(name: &str) -> Function {
    Function::new(name).code(format!("functions/{name}")).handler("app.handler").runtime(Runtime::Python3)
}

fn main() {
    skyform_sdk::run(|ctx| {
        let failed = ctx.add(Queue::new("jobs-failed"))?;
        // The visibility timeout stays above the worker's timeout, as Lambda requires.
        let jobs = ctx.add(Queue::new("jobs").visibility_timeout_secs(30).dead_letter(&failed, 3))?;
        let done = ctx.add(Topic::new("done"))?;
        let audit = ctx.add(Queue::new("audit"))?;

        let submit = ctx.add(
            python("submit").env("JOBS_QUEUE_URL", jobs.url()).allow(&["sqs:SendMessage"], jobs.arn()),
        )?;
        let worker = ctx.add(
            python("worker")
                .timeout_secs(10)
                .env("DONE_TOPIC_ARN", done.arn())
                .allow(&["sns:Publish"], done.arn()),
        )?;
        let notify = ctx.add(python("notify"))?;
        let sweep = ctx.add(
            python("sweep")
                .env("FAILED_QUEUE_URL", failed.url())
                .allow(&["sqs:GetQueueAttributes"], failed.arn()),
        )?;

        let api = ctx.add(HttpApi::new("api").route("POST /jobs", &submit))?;
        jobs.subscribe_with(&worker, QueueTrigger::new().batch_size(10).maximum_concurrency(2))?;
        done.subscribe(&notify)?;
        done.subscribe_queue(&audit)?;
        ctx.add(Schedule::rate("cleanup", "1 hour", &sweep))?;

        ctx.export("url", api.url());
        ctx.export("audit_queue_url", audit.url());
        ctx.export("done_topic_arn", done.arn());
        Ok(())
    })
}
