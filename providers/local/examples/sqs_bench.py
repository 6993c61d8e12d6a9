"""SQS benchmarks with one boto3 client (run by scripts/bench-sqs.sh against the local cloud,
moto server and a null server, unchanged; credentials and region from the environment).

Usage:
  sqs_bench.py send ENDPOINT SECONDS            SendMessage ops/s
  sqs_bench.py recv ENDPOINT SECONDS            ReceiveMessage+DeleteMessage pairs/s (fills
                                                the queue first with SendMessageBatch)
  sqs_bench.py e2e ENDPOINT COUNT CONTROL_PORT TOKEN
                                                messages/s from SendMessageBatch to a subscribed
                                                Python handler (local cloud only)
Each prints one JSON object with `ops_per_sec` (or `messages_per_sec`).
"""

import json
import sys
import threading
import time
import urllib.request

import boto3
from botocore.config import Config

mode, endpoint = sys.argv[1], sys.argv[2]
sqs = boto3.client("sqs", endpoint_url=endpoint, config=Config(retries={"max_attempts": 1}))
BODY = "x" * 100
ATTRS = {"kind": {"DataType": "String", "StringValue": "bench"}}


def loop(duration, op):
    """Runs `op` for `duration` seconds (or until it does nothing: an empty queue)."""
    n = 0
    start = time.perf_counter()
    end = start + duration
    while time.perf_counter() < end:
        k = op()
        if not k:
            break
        n += k
    return n, time.perf_counter() - start


if mode == "send":
    url = sqs.create_queue(QueueName="bench-send")["QueueUrl"]
    op = lambda: sqs.send_message(QueueUrl=url, MessageBody=BODY, MessageAttributes=ATTRS) and 1
    loop(1.0, op)
    n, took = loop(float(sys.argv[3]), op)
    print(json.dumps({"ops": n, "secs": round(took, 3), "ops_per_sec": round(n / took, 1)}))
elif mode == "recv":
    secs = float(sys.argv[3])
    url = sqs.create_queue(QueueName="bench-recv")["QueueUrl"]
    # Fill the queue: up to 2,500 messages per measured second, for at most 20 s (moto is
    # slow to fill); the measure stops early if the queue runs dry.
    entries = [{"Id": str(i), "MessageBody": BODY} for i in range(10)]
    fill, deadline = 0, time.perf_counter() + 20
    while fill < secs * 2500 + 1000 and time.perf_counter() < deadline:
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
        fill += 10

    def op():
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", [])
        for m in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return len(got)

    loop(0.5, op)
    n, took = loop(secs, op)
    print(json.dumps({"ops": n, "secs": round(took, 3), "ops_per_sec": round(n / took, 1), "prefilled": fill}))
elif mode == "e2e":
    count, control_port, token = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    url = sqs.get_queue_url(QueueName="bench-e2e")["QueueUrl"]

    def deleted():
        req = urllib.request.Request(
            f"http://127.0.0.1:{control_port}/v1/stacks/bench/queue-subscriptions/bench-e2e-sink",
            headers={"Authorization": f"Bearer {token}"},
        )
        return json.load(urllib.request.urlopen(req))["deleted"]

    base = deleted()
    threads = 2
    per = count // threads

    def sender(t):
        c = boto3.client("sqs", endpoint_url=endpoint, config=Config(retries={"max_attempts": 3}))
        for b in range(per // 10):
            entries = [{"Id": str(i), "MessageBody": f"{t}-{b}-{i}"} for i in range(10)]
            r = c.send_message_batch(QueueUrl=url, Entries=entries)
            assert not r.get("Failed"), r

    start = time.perf_counter()
    ts = [threading.Thread(target=sender, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    sent = time.perf_counter() - start
    while deleted() - base < per * threads:
        time.sleep(0.01)
    took = time.perf_counter() - start
    n = per * threads
    print(json.dumps({"messages": n, "send_secs": round(sent, 3), "secs": round(took, 3), "messages_per_sec": round(n / took, 1)}))
