"""`announce`: gets the `files` table's changes (a DynamoDB Streams event) and publishes each new
file on the `processed` topic. Updates and removals are not announced.

An exception fails the batch, which is retried (in order) until it succeeds.
"""

import json
import os

import boto3

sns = boto3.client("sns")
TOPIC_ARN = os.environ["PROCESSED_TOPIC_ARN"]


def plain(image):
    """A stream image's typed attributes (`{"size": {"N": "4"}}`) as plain values."""
    out = {}
    for name, typed in image.items():
        (kind, value), = typed.items()
        out[name] = int(value) if kind == "N" and value.lstrip("-").isdigit() else value
    return out


def handler(event, context):
    for record in event["Records"]:
        if record["eventName"] != "INSERT":
            continue
        item = plain(record["dynamodb"]["NewImage"])
        message = {"key": item["key"], "size": item.get("size"), "sha256": item.get("sha256")}
        sns.publish(
            TopicArn=TOPIC_ARN,
            Message=json.dumps(message),
            MessageAttributes={"event": {"DataType": "String", "StringValue": "file-processed"}},
        )
        print(f"announce: {item['key']} published")
    return {}
