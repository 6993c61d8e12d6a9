"""Publish ops/s of one boto3 SNS client (run by scripts/bench-sns.sh against the local cloud,
moto server and a null server, unchanged).

Usage: sns_bench.py ENDPOINT SECONDS [SUBSCRIBED_QUEUE_ARN]
Credentials and region come from the environment. Creates (or finds) the topic `bench` (or
$SNS_BENCH_TOPIC), warms up
for 1 s, then publishes a 100-byte message with one string attribute in a loop for SECONDS and
prints `{"ops": N, "secs": S, "ops_per_sec": R}`. With a queue ARN, subscribes it first (the
fan-out is then part of every Publish).
"""

import json
import os
import sys
import time

import boto3
from botocore.config import Config

endpoint, secs = sys.argv[1], float(sys.argv[2])
sns = boto3.client("sns", endpoint_url=endpoint, config=Config(retries={"max_attempts": 1}))
arn = sns.create_topic(Name=os.environ.get("SNS_BENCH_TOPIC", "bench"))["TopicArn"]
if len(sys.argv) > 3:
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=sys.argv[3])
message = "x" * 100
attrs = {"kind": {"DataType": "String", "StringValue": "bench"}}


def run(duration):
    n = 0
    start = time.perf_counter()
    end = start + duration
    while time.perf_counter() < end:
        sns.publish(TopicArn=arn, Message=message, MessageAttributes=attrs)
        n += 1
    return n, time.perf_counter() - start


run(1.0)
n, took = run(secs)
print(json.dumps({"ops": n, "secs": round(took, 3), "ops_per_sec": round(n / took, 1)}))
