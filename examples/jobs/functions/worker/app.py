"""The worker: gets batches of jobs from the `jobs` queue (an SQS event), processes each, and
publishes the result on the `done` topic.

A job with `"fail": true` fails on purpose: it is reported in `batchItemFailures`, so only that
message is retried (the others of the batch are done), and after 3 receives it goes to
`jobs-failed`.
"""

import json
import os

import boto3

sns = boto3.client("sns")
TOPIC_ARN = os.environ["DONE_TOPIC_ARN"]


def process(job):
    if job.get("fail"):
        raise ValueError("the job asked to fail")
    return {"id": job["id"], "task": job["task"], "input": job.get("input"), "status": "done"}


def handler(event, context):
    failures = []
    for record in event["Records"]:
        try:
            job = json.loads(record["body"])
            result = process(job)
        except Exception as e:  # one bad job must not fail the batch
            print(f"worker: message {record['messageId']} failed: {e}")
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        print(f"worker: job {result['id']} ({result['task']}) done")
        sns.publish(
            TopicArn=TOPIC_ARN,
            Message=json.dumps(result),
            MessageAttributes={"status": {"DataType": "String", "StringValue": result["status"]}},
        )
    return {"batchItemFailures": failures}
