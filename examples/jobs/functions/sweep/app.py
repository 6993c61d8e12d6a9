"""`sweep`: run by the `cleanup` schedule; reports how many jobs wait in the dead-letter queue.

It receives what EventBridge Scheduler sends (here `{}`, the schedule has no payload).
"""

import os

import boto3

sqs = boto3.client("sqs")
FAILED_URL = os.environ["FAILED_QUEUE_URL"]


def handler(event, context):
    attrs = sqs.get_queue_attributes(QueueUrl=FAILED_URL, AttributeNames=["ApproximateNumberOfMessages"])
    failed = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
    print(f"sweep: {failed} failed job(s) in jobs-failed")
    return {"failed": failed}
