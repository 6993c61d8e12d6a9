"""`POST /jobs`: checks the job and puts it on the `jobs` queue; answers 202 with its id.

The body is a JSON object with a `task` string, e.g. `{"task": "resize", "input": "cat.png"}`.
"""

import base64
import json
import os
import uuid

import boto3

# Created once per execution environment and reused by warm invocations. boto3 finds the
# endpoint, credentials and region in the environment (the local cloud sets AWS_ENDPOINT_URL).
sqs = boto3.client("sqs")
QUEUE_URL = os.environ["JOBS_QUEUE_URL"]


def answer(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def handler(event, context):
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    try:
        job = json.loads(body)
    except ValueError:
        job = None
    if not isinstance(job, dict) or not isinstance(job.get("task"), str) or not job["task"]:
        return answer(400, {"error": 'send a JSON object with a "task" string, e.g. {"task": "resize"}'})
    job["id"] = str(uuid.uuid4())
    sqs.send_message(QueueUrl=QUEUE_URL, MessageBody=json.dumps(job))
    print(f"submit: job {job['id']} ({job['task']}) queued")
    return answer(202, {"id": job["id"]})
