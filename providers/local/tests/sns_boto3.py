"""SNS on the local cloud, driven by boto3 (run by tests/sns.rs, which deploys the topic, the
queues and the functions first and passes their names in the environment).

Every check asserts; a failure prints a traceback and exits non-zero, which fails the Rust test.
Environment: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION (the
local cloud's), TOPIC_ARN (deployed by the provider, with the `recorder` function subscribed),
QUEUE_URL / RAW_QUEUE_URL (two deployed queues), RECORD_DIR (where the functions write the
events they get).
"""

import base64
import json
import os
import sys
import time

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import ClientError

env = os.environ
topic_arn = env["TOPIC_ARN"]
record_dir = env["RECORD_DIR"]
sns = boto3.client("sns")
sqs = boto3.client("sqs")


def code_of(fn):
    try:
        fn()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("expected an error")


def receive(url, want, wait=2):
    """Receives up to `want` messages (stops early when the queue stays empty `wait` s)."""
    got = []
    deadline = time.time() + 10
    while len(got) < want and time.time() < deadline:
        r = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, MessageAttributeNames=["All"]
        )
        msgs = r.get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        got.extend(msgs)
    return got


def records(name):
    """The events function `name` recorded, oldest first."""
    d = os.path.join(record_dir, name)
    if not os.path.isdir(d):
        return []
    out = []
    for f in sorted(os.listdir(d)):
        with open(os.path.join(d, f)) as fh:
            out.append(json.load(fh))
    return out


def wait_for(fn, secs=15):
    deadline = time.time() + secs
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    return fn()


def queue_arn(url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


# --- Topics: list and attributes -------------------------------------------------------------
arns = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
assert topic_arn in arns, arns
region, account = topic_arn.split(":")[3:5]
assert topic_arn.startswith(f"arn:aws:sns:{region}:{account}:"), topic_arn
attrs = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
assert attrs["TopicArn"] == topic_arn and attrs["Owner"] == account, attrs
missing = topic_arn + "-missing"
assert code_of(lambda: sns.get_topic_attributes(TopicArn=missing)) == ("NotFound", 404)
try:
    sns.publish(TopicArn=missing, Message="x")
    raise AssertionError("publish to a missing topic succeeded")
except sns.exceptions.NotFoundException:
    pass

# --- Subscriptions: an enveloped queue, and a raw one with a filter policy -------------------
env_q, raw_q = env["QUEUE_URL"], env["RAW_QUEUE_URL"]
sub_env = sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn(env_q), ReturnSubscriptionArn=True)[
    "SubscriptionArn"
]
policy = {"color": ["red", {"prefix": "bl"}], "size": [{"numeric": [">=", 10]}]}
sub_raw = sns.subscribe(
    TopicArn=topic_arn,
    Protocol="sqs",
    Endpoint=queue_arn(raw_q),
    Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps(policy)},
    ReturnSubscriptionArn=True,
)["SubscriptionArn"]
subs = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
by_arn = {s["SubscriptionArn"]: s for s in subs}
assert sub_env in by_arn and sub_raw in by_arn, subs
assert by_arn[sub_raw]["Protocol"] == "sqs" and by_arn[sub_raw]["Endpoint"] == queue_arn(raw_q)
assert any(s["Protocol"] == "lambda" for s in subs), "the provider's function subscription is listed"
assert {s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]} >= set(by_arn)
sa = sns.get_subscription_attributes(SubscriptionArn=sub_raw)["Attributes"]
assert sa["RawMessageDelivery"] == "true" and json.loads(sa["FilterPolicy"]) == policy, sa
code = code_of(
    lambda: sns.subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn(env_q) + "x",
        Attributes={"FilterPolicy": '{"a": "not a list"}'},
    )
)
assert code == ("InvalidParameter", 400), code
try:
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn(env_q), Attributes={"FilterPolicy": "{"})
    raise AssertionError("a bad filter policy was taken")
except sns.exceptions.InvalidParameterException as e:
    assert "FilterPolicy" in str(e), e

# --- Publish: the envelope, raw delivery, filter policies ------------------------------------
r = sns.publish(
    TopicArn=topic_arn,
    Message="hello",
    Subject="greeting",
    MessageAttributes={
        "color": {"DataType": "String", "StringValue": "blue"},
        "size": {"DataType": "Number", "StringValue": "12"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    },
)
mid = r["MessageId"]
assert r["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-requestid"), r["ResponseMetadata"]
got = receive(env_q, 1)
assert len(got) == 1, got
e = json.loads(got[0]["Body"])
assert e["Type"] == "Notification" and e["MessageId"] == mid and e["TopicArn"] == topic_arn, e
assert e["Subject"] == "greeting" and e["Message"] == "hello", e
assert e["SignatureVersion"] == "1" and e["Signature"] and e["SigningCertURL"].endswith(".pem"), e
assert e["UnsubscribeURL"].endswith("SubscriptionArn=" + sub_env), e
assert e["Timestamp"].endswith("Z") and "T" in e["Timestamp"], e
assert e["MessageAttributes"]["color"] == {"Type": "String", "Value": "blue"}, e
assert e["MessageAttributes"]["size"] == {"Type": "Number", "Value": "12"}, e
assert e["MessageAttributes"]["blob"] == {"Type": "Binary", "Value": base64.b64encode(b"\x00\x01").decode()}, e
raw = receive(raw_q, 1)
assert len(raw) == 1 and raw[0]["Body"] == "hello", raw
ma = raw[0].get("MessageAttributes", {})
assert ma["color"]["StringValue"] == "blue" and ma["size"]["StringValue"] == "12", ma
assert ma["blob"]["BinaryValue"] == b"\x00\x01", ma

# Not matching the policy: the enveloped queue gets it, the raw (filtered) one does not.
for attrs in (
    {"color": {"DataType": "String", "StringValue": "green"}, "size": {"DataType": "Number", "StringValue": "12"}},
    {"color": {"DataType": "String", "StringValue": "red"}, "size": {"DataType": "Number", "StringValue": "9"}},
    {"color": {"DataType": "String", "StringValue": "red"}},
    {},
):
    sns.publish(TopicArn=topic_arn, Message="filtered", MessageAttributes=attrs)
assert len(receive(env_q, 4)) == 4
assert receive(raw_q, 1, wait=1) == [], "a message not matching the filter policy was delivered"
# Matching again (exact "red", size 10): delivered.
sns.publish(
    TopicArn=topic_arn,
    Message="match",
    MessageAttributes={"color": {"DataType": "String", "StringValue": "red"}, "size": {"DataType": "Number", "StringValue": "10"}},
)
assert [m["Body"] for m in receive(raw_q, 1)] == ["match"]
receive(env_q, 1)
# A policy changed later applies at once; MessageBody scope filters on the JSON body.
sns.set_subscription_attributes(SubscriptionArn=sub_raw, AttributeName="FilterPolicyScope", AttributeValue="MessageBody")
sns.set_subscription_attributes(
    SubscriptionArn=sub_raw, AttributeName="FilterPolicy", AttributeValue=json.dumps({"order": {"status": ["paid"]}})
)
sns.publish(TopicArn=topic_arn, Message=json.dumps({"order": {"status": "open"}}))
sns.publish(TopicArn=topic_arn, Message=json.dumps({"order": {"status": "paid"}}))
assert [json.loads(m["Body"])["order"]["status"] for m in receive(raw_q, 2)] == ["paid"]
receive(env_q, 2)

# MessageStructure=json: the `sqs` text to queues.
sns.publish(TopicArn=topic_arn, MessageStructure="json", Message=json.dumps({"default": "d", "sqs": "for queues"}))
assert [json.loads(m["Body"])["Message"] for m in receive(env_q, 1)] == ["for queues"]
assert code_of(lambda: sns.publish(TopicArn=topic_arn, MessageStructure="json", Message="{}")) == ("InvalidParameter", 400)

# --- Publish errors --------------------------------------------------------------------------
assert code_of(lambda: sns.publish(TopicArn=topic_arn, Message="x" * (256 * 1024 + 1))) == ("InvalidParameter", 400)
assert code_of(
    lambda: sns.publish(TopicArn=topic_arn, Message="x", MessageAttributes={"n": {"DataType": "Number", "StringValue": "ten"}})
) == ("InvalidParameter", 400)
assert code_of(lambda: sns.publish(TopicArn=topic_arn, Message="x", MessageGroupId="g")) == ("InvalidParameter", 400)

# --- PublishBatch ----------------------------------------------------------------------------
entries = [
    {"Id": f"e{i}", "Message": f"batch-{i}", "MessageAttributes": {"i": {"DataType": "Number", "StringValue": str(i)}}}
    for i in range(3)
]
entries.append({"Id": "bad", "Message": "x", "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "nan?"}}})
r = sns.publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=entries)
assert sorted(s["Id"] for s in r["Successful"]) == ["e0", "e1", "e2"], r
assert [(f["Id"], f["Code"], f["SenderFault"]) for f in r["Failed"]] == [("bad", "InvalidParameter", True)], r
bodies = sorted(json.loads(m["Body"])["Message"] for m in receive(env_q, 3))
assert bodies == ["batch-0", "batch-1", "batch-2"], bodies
eleven = [{"Id": f"e{i}", "Message": "x"} for i in range(11)]
try:
    sns.publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=eleven)
    raise AssertionError("11 entries were taken")
except sns.exceptions.TooManyEntriesInBatchRequestException:
    pass
dup = [{"Id": "a", "Message": "x"}, {"Id": "a", "Message": "y"}]
assert code_of(lambda: sns.publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=dup)) == ("BatchEntryIdsNotDistinct", 400)
unchecked = boto3.client("sns", config=Config(parameter_validation=False))
assert code_of(lambda: unchecked.publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=[])) == ("EmptyBatchRequest", 400)
assert code_of(lambda: sns.publish_batch(TopicArn=missing, PublishBatchRequestEntries=dup[:1])) == ("NotFound", 404)
assert receive(env_q, 1, wait=1) == [], "a refused batch delivered something"

# --- Signatures ------------------------------------------------------------------------------
wrong = boto3.client("sns", aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key="wrong" * 8)
assert code_of(lambda: wrong.list_topics()) == ("SignatureDoesNotMatch", 403)
unsigned = boto3.client("sns", config=Config(signature_version=botocore.UNSIGNED))
code = code_of(lambda: unsigned.publish(TopicArn=topic_arn, Message="x"))
assert code[1] == 403 and code[0].startswith("MissingAuthentication"), code
assert receive(env_q, 1, wait=1) == [], "an unsigned publish was delivered"

# --- Functions: the SNS event, asynchronous retries ------------------------------------------
sns.publish(
    TopicArn=topic_arn,
    Message="to the function",
    Subject="s",
    MessageAttributes={"color": {"DataType": "String", "StringValue": "red"}},
)
ev = wait_for(lambda: [e for e in records("recorder") if e["Records"][0]["Sns"]["Message"] == "to the function"])
assert len(ev) == 1, records("recorder")
rec = ev[0]["Records"][0]
assert rec["EventSource"] == "aws:sns" and rec["EventVersion"] == "1.0", rec
assert rec["EventSubscriptionArn"].startswith(topic_arn + ":"), rec
s = rec["Sns"]
assert s["Type"] == "Notification" and s["TopicArn"] == topic_arn and s["Subject"] == "s", s
assert s["MessageAttributes"] == {"color": {"Type": "String", "Value": "red"}}, s
assert s["SignatureVersion"] == "1" and s["SigningCertUrl"] and s["UnsubscribeUrl"], s
receive(env_q, 1)

# The flaky function fails twice, then succeeds: SNS's async invocation retries it twice.
fn_arn = env["FLAKY_ARN"]
flaky_sub = sns.subscribe(TopicArn=topic_arn, Protocol="lambda", Endpoint=fn_arn, ReturnSubscriptionArn=True)[
    "SubscriptionArn"
]
t0 = time.time()
sns.publish(TopicArn=topic_arn, Message="flaky")
attempts = wait_for(lambda: len(records("flaky")) >= 3 and records("flaky"), secs=20)
assert len(attempts) == 3, attempts
assert all(a["Records"][0]["Sns"]["Message"] == "flaky" for a in attempts)
assert len({a["Records"][0]["Sns"]["MessageId"] for a in attempts}) == 1, "retries resend the same message"
assert time.time() - t0 >= 2.5, "retries wait 1 s and 2 s"
time.sleep(1.5)
assert len(records("flaky")) == 3, "no more than two retries"
sns.unsubscribe(SubscriptionArn=flaky_sub)
assert flaky_sub not in {x["SubscriptionArn"] for x in sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]}
receive(env_q, 1)

# --- FIFO: a topic made with the API, ordered delivery to a FIFO queue, deduplication --------
fifo_arn = sns.create_topic(Name="orders.fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"})[
    "TopicArn"
]
assert fifo_arn.endswith(":orders.fifo")
assert sns.create_topic(Name="orders.fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"})["TopicArn"] == fifo_arn
assert code_of(lambda: sns.create_topic(Name="orders.fifo")) == ("InvalidParameter", 400)
assert code_of(lambda: sns.create_topic(Name="bad name")) == ("InvalidParameter", 400)
fifo_q = env["FIFO_QUEUE_URL"]
sns.subscribe(TopicArn=fifo_arn, Protocol="sqs", Endpoint=queue_arn(fifo_q), Attributes={"RawMessageDelivery": "true"})
assert code_of(lambda: sns.publish(TopicArn=fifo_arn, Message="no group")) == ("InvalidParameter", 400)
first = sns.publish(TopicArn=fifo_arn, Message="o1", MessageGroupId="g")
for body in ["o2", "o3"]:
    sns.publish(TopicArn=fifo_arn, Message=body, MessageGroupId="g")
dup = sns.publish(TopicArn=fifo_arn, Message="o1", MessageGroupId="g")
assert dup["MessageId"] == first["MessageId"] and dup["SequenceNumber"] == first["SequenceNumber"], (first, dup)
assert [m["Body"] for m in receive(fifo_q, 3)] == ["o1", "o2", "o3"]
assert receive(fifo_q, 1, wait=1) == [], "the duplicate was delivered"
sns.delete_topic(TopicArn=fifo_arn)
sns.delete_topic(TopicArn=fifo_arn)  # deleting a missing topic succeeds, as on SNS
assert fifo_arn not in [t["TopicArn"] for t in sns.list_topics()["Topics"]]

# --- Pagination: ListTopics pages by 100, boto3's paginator follows NextToken ----------------
made = [sns.create_topic(Name=f"page-{i:03}")["TopicArn"] for i in range(101)]
first_page = sns.list_topics()
assert len(first_page["Topics"]) == 100 and first_page.get("NextToken"), len(first_page["Topics"])
every = [t["TopicArn"] for p in sns.get_paginator("list_topics").paginate() for t in p["Topics"]]
assert set(made) <= set(every) and topic_arn in every and len(every) == len(set(every)) == 102, len(every)
for a in made:
    sns.delete_topic(TopicArn=a)

# Clean up what this script subscribed, so the Rust test sees only the provider's subscription.
sns.unsubscribe(SubscriptionArn=sub_env)
sns.unsubscribe(SubscriptionArn=sub_raw)
print("ok")
