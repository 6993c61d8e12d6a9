"""SQS on the local cloud, driven by boto3 (the reference client). Run by `sqs.rs` with the
endpoint and the local credentials in the environment, and the names of the deployed queues
as arguments: STANDARD DLQ FIFO. Every check raises on failure; exit 0 means all passed."""
import base64
import hashlib
import os
import sys
import threading
import time

import boto3
import botocore
from botocore.config import Config

standard_name, dlq_name, fifo_name = sys.argv[1:4]
endpoint = os.environ["AWS_ENDPOINT_URL"]
sqs = boto3.client("sqs", config=Config(retries={"max_attempts": 1}))


def expect_error(code, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except botocore.exceptions.ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"expected {code}, got {got}: {e.response['Error']}"
        return e
    raise AssertionError(f"expected {code}, the call succeeded")


# GetQueueUrl and ListQueues: URLs shaped like AWS's.
url = sqs.get_queue_url(QueueName=standard_name)["QueueUrl"]
assert url == f"{endpoint}/000000000000/{standard_name}", url
dlq = sqs.get_queue_url(QueueName=dlq_name)["QueueUrl"]
fifo = sqs.get_queue_url(QueueName=fifo_name)["QueueUrl"]
urls = sqs.list_queues()["QueueUrls"]
assert {url, dlq, fifo} <= set(urls), urls
assert sqs.list_queues(QueueNamePrefix=fifo_name[:-5])["QueueUrls"] == [fifo]
page = sqs.list_queues(MaxResults=1)
assert len(page["QueueUrls"]) == 1 and "NextToken" in page
e = expect_error("AWS.SimpleQueueService.NonExistentQueue", sqs.get_queue_url, QueueName="no-such-queue")
assert isinstance(e, sqs.exceptions.QueueDoesNotExist)
expect_error("AWS.SimpleQueueService.NonExistentQueue", sqs.send_message, QueueUrl=url + "-nope", MessageBody="x")

# Attributes.
a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
assert a["QueueArn"] == f"arn:aws:sqs:us-east-1:000000000000:{standard_name}", a
assert a["VisibilityTimeout"] == "2", a
assert '"maxReceiveCount": 2' in a["RedrivePolicy"] or '"maxReceiveCount":2' in a["RedrivePolicy"], a
one = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
assert one == {"VisibilityTimeout": "2"}, one
expect_error("InvalidAttributeName", sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["Nope"])
sqs.purge_queue(QueueUrl=url)

# SendMessage with attributes of every type: boto3 checks both MD5s of the answer itself.
attrs = {
    "s": {"DataType": "String", "StringValue": "héllo"},
    "n": {"DataType": "Number", "StringValue": "42.5"},
    "b": {"DataType": "Binary", "BinaryValue": b"\x00\xffbin"},
    "custom": {"DataType": "String.custom", "StringValue": "x"},
}
sent = sqs.send_message(QueueUrl=url, MessageBody="body ✓", MessageAttributes=attrs)
assert sent["MD5OfMessageBody"] == hashlib.md5("body ✓".encode()).hexdigest()
got = sqs.receive_message(
    QueueUrl=url,
    MaxNumberOfMessages=10,
    MessageAttributeNames=["All"],
    MessageSystemAttributeNames=["All"],
)["Messages"]
assert len(got) == 1, got
m = got[0]
assert m["MessageId"] == sent["MessageId"] and m["Body"] == "body ✓"
assert m["MessageAttributes"]["b"]["BinaryValue"] == b"\x00\xffbin"
assert m["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
assert m["Attributes"]["ApproximateReceiveCount"] == "1", m
assert abs(int(m["Attributes"]["SentTimestamp"]) - time.time() * 1000) < 60_000
# A subset of attributes: the MD5 covers what is returned (boto3 verifies it).
sub = None
sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
sub = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["s"], AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
assert list(sub["MessageAttributes"]) == ["s"], sub
assert sub["Attributes"] == {"ApproximateReceiveCount": "2"}, sub
# The old receipt handle no longer deletes it (as on AWS: success, nothing deleted).
sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
sqs.delete_message(QueueUrl=url, ReceiptHandle=sub["ReceiptHandle"])
expect_error("ReceiptHandleIsInvalid", sqs.delete_message, QueueUrl=url, ReceiptHandle="garbage")
assert "Messages" not in sqs.receive_message(QueueUrl=url)

# Limits and bad input.
big = "x" * (256 * 1024 + 1)
expect_error("InvalidParameterValue", sqs.send_message, QueueUrl=url, MessageBody=big)
sqs.send_message(QueueUrl=url, MessageBody="y" * (256 * 1024 - 10))
expect_error("InvalidMessageContents", sqs.send_message, QueueUrl=url, MessageBody="bad \x01 char")
expect_error("InvalidParameterValue", sqs.send_message, QueueUrl=url, MessageBody="x", DelaySeconds=901)
expect_error("InvalidParameterValue", sqs.send_message, QueueUrl=url, MessageBody="x",
             MessageAttributes={"n": {"DataType": "Number", "StringValue": "abc"}})
expect_error("InvalidParameterValue", sqs.receive_message, QueueUrl=url, MaxNumberOfMessages=11)
entries = [{"Id": str(i), "MessageBody": "m"} for i in range(11)]
expect_error("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", sqs.send_message_batch, QueueUrl=url, Entries=entries)
expect_error("AWS.SimpleQueueService.EmptyBatchRequest", sqs.send_message_batch, QueueUrl=url, Entries=[])
expect_error("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", sqs.send_message_batch, QueueUrl=url,
             Entries=[{"Id": "a", "MessageBody": "1"}, {"Id": "a", "MessageBody": "2"}])
expect_error("AWS.SimpleQueueService.InvalidBatchEntryId", sqs.send_message_batch, QueueUrl=url,
             Entries=[{"Id": "bad id!", "MessageBody": "1"}])
expect_error("AWS.SimpleQueueService.BatchRequestTooLong", sqs.send_message_batch, QueueUrl=url,
             Entries=[{"Id": str(i), "MessageBody": "z" * 100_000} for i in range(3)])
expect_error("InvalidParameterValue", sqs.create_queue, QueueName="bad name!")
sqs.purge_queue(QueueUrl=url)

# Batches: a bad entry fails alone.
r = sqs.send_message_batch(QueueUrl=url, Entries=[
    {"Id": "ok1", "MessageBody": "one"},
    {"Id": "bad", "MessageBody": "two", "MessageAttributes": {"x": {"DataType": "Weird", "StringValue": "1"}}},
    {"Id": "ok2", "MessageBody": "three", "DelaySeconds": 1},
])
assert sorted(x["Id"] for x in r["Successful"]) == ["ok1", "ok2"], r
assert [x["Id"] for x in r["Failed"]] == ["bad"] and r["Failed"][0]["SenderFault"], r
a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"])["Attributes"]
assert a == {"ApproximateNumberOfMessages": "1", "ApproximateNumberOfMessagesDelayed": "1"}, a
# Long polling: the delayed message arrives during the wait.
first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)["Messages"]
assert [x["Body"] for x in first] == ["one"], first
t0 = time.time()
later = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, VisibilityTimeout=60)["Messages"]
assert [x["Body"] for x in later] == ["three"] and time.time() - t0 < 4, (later, time.time() - t0)
# Long polling wakes on a send from another client.
def send_soon():
    time.sleep(0.5)
    boto3.client("sqs").send_message(QueueUrl=url, MessageBody="woken")
threading.Thread(target=send_soon).start()
t0 = time.time()
woke = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10, VisibilityTimeout=60)["Messages"]
assert woke[0]["Body"] == "woken" and time.time() - t0 < 5
# An empty long poll lasts its wait.
t0 = time.time()
assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
assert time.time() - t0 >= 0.9
# DeleteMessageBatch and ChangeMessageVisibilityBatch.
handles = [x["ReceiptHandle"] for x in first + later + woke]
r = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
    {"Id": "a", "ReceiptHandle": handles[0], "VisibilityTimeout": 60},
    {"Id": "b", "ReceiptHandle": "garbage", "VisibilityTimeout": 60},
])
assert [x["Id"] for x in r["Successful"]] == ["a"] and [x["Id"] for x in r["Failed"]] == ["b"], r
r = sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": f"d{i}", "ReceiptHandle": h} for i, h in enumerate(handles)])
assert len(r["Successful"]) == 3 and not r.get("Failed"), r
# Visibility timeout: a received message comes back after it (the queue's is 2 s), counted.
sqs.send_message(QueueUrl=url, MessageBody="again")
a1 = sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
assert "Messages" not in sqs.receive_message(QueueUrl=url)
a2 = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
assert a2["MessageId"] == a1["MessageId"] and a2["Attributes"]["ApproximateReceiveCount"] == "2"
expect_error("AWS.SimpleQueueService.MessageNotInflight", sqs.change_message_visibility,
             QueueUrl=url, ReceiptHandle=a1["ReceiptHandle"], VisibilityTimeout=10)
# Redrive: maxReceiveCount is 2, so the third receive moves it to the dead-letter queue.
time.sleep(2.1)
assert "Messages" not in sqs.receive_message(QueueUrl=url)
dead = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=2)["Messages"]
assert [x["MessageId"] for x in dead] == [a1["MessageId"]] and dead[0]["Body"] == "again", dead
sqs.delete_message(QueueUrl=dlq, ReceiptHandle=dead[0]["ReceiptHandle"])

# FIFO: order per group, a group is held while a message of it is in flight, deduplication.
for i in range(5):
    for g in ("a", "b"):
        sqs.send_message(QueueUrl=fifo, MessageBody=f"{g}{i}", MessageGroupId=g)
dup = sqs.send_message(QueueUrl=fifo, MessageBody="a0", MessageGroupId="a")  # content-based dedup
r1 = sqs.send_message(QueueUrl=fifo, MessageBody="explicit", MessageGroupId="c", MessageDeduplicationId="d1")
r2 = sqs.send_message(QueueUrl=fifo, MessageBody="explicit again", MessageGroupId="c", MessageDeduplicationId="d1")
assert r1["MessageId"] == r2["MessageId"] and int(r1["SequenceNumber"]) > 0
expect_error("MissingParameter", sqs.send_message, QueueUrl=fifo, MessageBody="x")
expect_error("InvalidParameterValue", sqs.send_message, QueueUrl=fifo, MessageBody="x", MessageGroupId="a", DelaySeconds=5)
seen = {"a": [], "b": [], "c": []}
batch = sqs.receive_message(QueueUrl=fifo, MaxNumberOfMessages=3, AttributeNames=["All"])["Messages"]
for x in batch:
    seen[x["Attributes"]["MessageGroupId"]].append(x["Body"])
# The groups of that batch are held: nothing more of them until it is deleted.
held = {x["Attributes"]["MessageGroupId"] for x in batch}
while True:
    more = sqs.receive_message(QueueUrl=fifo, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
    assert not any(x["Attributes"]["MessageGroupId"] in held for x in more), (held, more)
    for x in more:
        seen[x["Attributes"]["MessageGroupId"]].append(x["Body"])
    done = batch + more
    if done:
        sqs.delete_message_batch(QueueUrl=fifo, Entries=[{"Id": str(i), "ReceiptHandle": x["ReceiptHandle"]} for i, x in enumerate(done)])
    if not more:
        break
    held, batch = set(), []
rest = sqs.receive_message(QueueUrl=fifo, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
for x in rest:
    seen[x["Attributes"]["MessageGroupId"]].append(x["Body"])
assert seen["a"] == [f"a{i}" for i in range(5)], seen
assert seen["b"] == [f"b{i}" for i in range(5)], seen
assert seen["c"] == ["explicit"], seen

# Signatures: wrong secret, unknown key, unsigned, expired.
bad = boto3.client("sqs", aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"], aws_secret_access_key="wrong" * 8, config=Config(retries={"max_attempts": 1}))
e = expect_error("SignatureDoesNotMatch", bad.list_queues)
assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403
other = boto3.client("sqs", aws_access_key_id="AKIAOTHER", aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}))
expect_error("InvalidClientTokenId", other.list_queues)
unsigned = boto3.client("sqs", config=Config(signature_version=botocore.UNSIGNED, retries={"max_attempts": 1}))
expect_error("MissingAuthenticationToken", unsigned.list_queues)
import datetime
import botocore.auth
real_now = botocore.auth.get_current_datetime
botocore.auth.get_current_datetime = lambda *a, **k: real_now(*a, **k) - datetime.timedelta(minutes=20)
try:
    e = expect_error("SignatureDoesNotMatch", sqs.list_queues)
    assert "expired" in e.response["Error"]["Message"], e.response
finally:
    botocore.auth.get_current_datetime = real_now
sqs.list_queues()
print("sqs_boto3: all checks passed")
