"""The worker: gets batches of jobs from the `jobs` queue (an SQS event), reads each uploaded
object and records it in the `files` table (its size and SHA-256).

A job whose object cannot be read (deleted in between, say) is reported in `batchItemFailures`:
only that message is retried, and after 3 receives it goes to `jobs-failed`.
"""

import hashlib
import json
import os
from datetime import datetime, timezone

import boto3

s3 = boto3.client("s3")
table = boto3.resource("dynamodb").Table(os.environ["FILES_TABLE"])


def process(job):
    obj = s3.get_object(Bucket=job["bucket"], Key=job["key"])
    digest, size = hashlib.sha256(), 0
    for chunk in obj["Body"].iter_chunks(1 << 20):
        digest.update(chunk)
        size += len(chunk)
    item = {
        "key": job["key"],
        "bucket": job["bucket"],
        "size": size,
        "sha256": digest.hexdigest(),
        "content_type": obj.get("ContentType", "binary/octet-stream"),
        "processed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    table.put_item(Item=item)
    return item


def handler(event, context):
    failures = []
    for record in event["Records"]:
        try:
            item = process(json.loads(record["body"]))
        except Exception as e:  # one bad job must not fail the batch
            print(f"worker: message {record['messageId']} failed: {e}")
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        print(f"worker: {item['key']} recorded ({item['size']} bytes, sha256 {item['sha256'][:12]})")
    return {"batchItemFailures": failures}
