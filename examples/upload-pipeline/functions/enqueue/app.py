"""`enqueue`: notified by the bucket of every object created under `incoming/` (an S3 event);
puts one job per upload on the `jobs` queue."""

import json
import os
from urllib.parse import unquote_plus

import boto3

sqs = boto3.client("sqs")
QUEUE_URL = os.environ["JOBS_QUEUE_URL"]


def handler(event, context):
    for record in event["Records"]:
        # S3 events carry the key URL-encoded (a space is `+`).
        job = {
            "bucket": record["s3"]["bucket"]["name"],
            "key": unquote_plus(record["s3"]["object"]["key"]),
            "size": record["s3"]["object"].get("size", 0),
        }
        sqs.send_message(QueueUrl=QUEUE_URL, MessageBody=json.dumps(job))
        print(f"enqueue: {job['key']} ({job['size']} bytes) queued")
    return {}
