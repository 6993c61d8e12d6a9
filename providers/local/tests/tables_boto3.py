"""Tables on the local cloud, driven by boto3's client and resource APIs (run by
tests/tables.rs, which deploys the tables, the functions and the change triggers first).

Every check asserts; a failure prints a traceback and exits non-zero, which fails the Rust test.
Environment: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION (the
local cloud's), TABLE (deployed with hash key `pk` S, range key `sk` S and the index `byStatus`:
hash `st` S, range `n` N), FLAKY_TABLE (hash key `id` S; its trigger's function fails its first
two invocations), RECORD_DIR (where the functions write the events they get).
"""

import json
import os
import time
from decimal import Decimal

import boto3
from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

env = os.environ
TABLE = env["TABLE"]
record_dir = env["RECORD_DIR"]
ddb = boto3.client("dynamodb")
res = boto3.resource("dynamodb")
table = res.Table(TABLE)


def err(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"].get("Message", ""), e.response
    raise AssertionError("expected an error")


def S(s):
    return {"S": s}


def N(n):
    return {"N": str(n)}


# --- tables ---
desc = ddb.describe_table(TableName=TABLE)["Table"]
assert desc["TableStatus"] == "ACTIVE"
assert desc["TableArn"] == "arn:aws:dynamodb:us-east-1:000000000000:table/" + TABLE
assert desc["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
assert desc["GlobalSecondaryIndexes"][0]["IndexName"] == "byStatus", desc
assert desc["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}, desc
assert desc["LatestStreamArn"].startswith(desc["TableArn"] + "/stream/")
assert TABLE in ddb.list_tables()["TableNames"]
code, msg, _ = err(ddb.describe_table, TableName="nope-table")
assert code == "ResourceNotFoundException", code
code, _, _ = err(ddb.get_item, TableName="nope-table", Key={"pk": S("a")})
assert code == "ResourceNotFoundException", code

# Scripts can make their own tables.
ddb.create_table(
    TableName="scratch",
    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
    BillingMode="PAY_PER_REQUEST",
)
ddb.get_waiter("table_exists").wait(TableName="scratch")
code, _, _ = err(
    ddb.create_table,
    TableName="scratch",
    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
    BillingMode="PAY_PER_REQUEST",
)
assert code == "ResourceInUseException", code
ddb.put_item(TableName="scratch", Item={"id": N(1)})
ddb.delete_table(TableName="scratch")
assert "scratch" not in ddb.list_tables()["TableNames"]

# --- put, get, projections, numbers ---
big = "12345678901234567890123456789012345678"
ddb.put_item(
    TableName=TABLE,
    Item={
        "pk": S("user#1"),
        "sk": S("profile"),
        "name": S("Ada"),
        "age": N("36.50"),
        "big": N(big),
        "tags": {"SS": ["a", "b"]},
        "doc": {"M": {"a": {"M": {"b": {"L": [N(0), N(1), {"M": {"c": S("deep")}}]}}}}},
        "bin": {"B": b"\x00\x01"},
        "ok": {"BOOL": True},
        "nothing": {"NULL": True},
    },
)
got = ddb.get_item(TableName=TABLE, Key={"pk": S("user#1"), "sk": S("profile")}, ConsistentRead=True)["Item"]
assert got["age"] == N("36.5"), got["age"]
assert got["big"] == N(big)
assert got["bin"] == {"B": b"\x00\x01"}
assert got["tags"] == {"SS": ["a", "b"]}
got = ddb.get_item(
    TableName=TABLE,
    Key={"pk": S("user#1"), "sk": S("profile")},
    ProjectionExpression="#n, doc.a.b[2].c",
    ExpressionAttributeNames={"#n": "name"},
)["Item"]
assert got == {"name": S("Ada"), "doc": {"M": {"a": {"M": {"b": {"L": [{"M": {"c": S("deep")}}]}}}}}}, got
assert "Item" not in ddb.get_item(TableName=TABLE, Key={"pk": S("nobody"), "sk": S("x")})

# Exact decimal arithmetic on 38 digits.
r = ddb.update_item(
    TableName=TABLE,
    Key={"pk": S("user#1"), "sk": S("profile")},
    UpdateExpression="SET big = big + :one",
    ExpressionAttributeValues={":one": N(1)},
    ReturnValues="UPDATED_NEW",
)
assert r["Attributes"] == {"big": N("12345678901234567890123456789012345679")}, r

# --- conditions ---
item = {"pk": S("user#2"), "sk": S("profile"), "n": N(1)}
ddb.put_item(TableName=TABLE, Item=item, ConditionExpression="attribute_not_exists(pk)")
code, msg, resp = err(
    ddb.put_item,
    TableName=TABLE,
    Item=item,
    ConditionExpression="attribute_not_exists(pk)",
    ReturnValuesOnConditionCheckFailure="ALL_OLD",
)
assert code == "ConditionalCheckFailedException", code
assert msg == "The conditional request failed", msg
assert resp["Item"] == item, resp
try:
    ddb.put_item(TableName=TABLE, Item=item, ConditionExpression="attribute_not_exists(pk)")
    raise AssertionError("expected a failure")
except ddb.exceptions.ConditionalCheckFailedException:
    pass
conds = [
    ("n = :one AND attribute_type(n, :t)", {":one": N(1), ":t": S("N")}, True),
    ("n <> :one OR (n >= :one AND n <= :one)", {":one": N(1)}, True),
    ("NOT (n > :one) AND n < :two", {":one": N(1), ":two": N(2)}, True),
    ("n BETWEEN :a AND :b", {":a": N(0), ":b": N(5)}, True),
    ("n IN (:a, :b)", {":a": N(7), ":b": N(8)}, False),
    ("size(sk) = :seven AND begins_with(sk, :p) AND contains(sk, :f)", {":seven": N(7), ":p": S("pro"), ":f": S("fil")}, True),
]
for expr, values, ok in conds:
    try:
        ddb.put_item(TableName=TABLE, Item=item, ConditionExpression=expr, ExpressionAttributeValues=values)
        assert ok, expr
    except ddb.exceptions.ConditionalCheckFailedException:
        assert not ok, expr
ddb.delete_item(TableName=TABLE, Key={"pk": S("user#2"), "sk": S("profile")}, ConditionExpression="attribute_exists(pk)")
code, _, _ = err(ddb.delete_item, TableName=TABLE, Key={"pk": S("user#2"), "sk": S("profile")}, ConditionExpression="attribute_exists(pk)")
assert code == "ConditionalCheckFailedException"
old = ddb.put_item(TableName=TABLE, Item=item, ReturnValues="ALL_OLD")
assert "Attributes" not in old
old = ddb.delete_item(TableName=TABLE, Key={"pk": S("user#2"), "sk": S("profile")}, ReturnValues="ALL_OLD")
assert old["Attributes"] == item

# --- updates ---
key = {"pk": S("counter"), "sk": S("c")}
r = ddb.update_item(
    TableName=TABLE,
    Key=key,
    UpdateExpression="SET hits = if_not_exists(hits, :zero) + :one, entries = list_append(if_not_exists(entries, :empty), :e)",
    ExpressionAttributeValues={":zero": N(0), ":one": N(1), ":empty": {"L": []}, ":e": {"L": [S("first")]}},
    ReturnValues="ALL_NEW",
)
assert r["Attributes"] == {"pk": S("counter"), "sk": S("c"), "hits": N(1), "entries": {"L": [S("first")]}}, r
r = ddb.update_item(
    TableName=TABLE,
    Key=key,
    UpdateExpression="SET hits = hits + :two, entries = list_append(:e, entries), m = :m ADD tags :t, tally :five",
    ExpressionAttributeValues={":two": N(2), ":e": {"L": [S("zeroth")]}, ":m": {"M": {"x": N(1)}}, ":t": {"SS": ["x", "y"]}, ":five": N(5)},
    ReturnValues="UPDATED_OLD",
)
assert r["Attributes"] == {"hits": N(1), "entries": {"L": [S("first")]}}, r
r = ddb.update_item(
    TableName=TABLE,
    Key=key,
    UpdateExpression="SET m.y = :y DELETE tags :x ADD tally :minus",
    ExpressionAttributeValues={":y": N(2), ":x": {"SS": ["x"]}, ":minus": N(-7)},
    ReturnValues="UPDATED_NEW",
)
assert r["Attributes"] == {"m": {"M": {"y": N(2)}}, "tags": {"SS": ["y"]}, "tally": N(-2)}, r
# An index past the end appends; removals shift the list.
r = ddb.update_item(
    TableName=TABLE,
    Key=key,
    UpdateExpression="SET entries[5] = :z REMOVE entries[0]",
    ExpressionAttributeValues={":z": S("appended")},
    ReturnValues="ALL_NEW",
)
assert r["Attributes"]["entries"] == {"L": [S("first"), S("appended")]}, r
r = ddb.update_item(TableName=TABLE, Key=key, UpdateExpression="REMOVE m, tags", ReturnValues="ALL_NEW")
assert r["Attributes"] == {"pk": S("counter"), "sk": S("c"), "hits": N(3), "entries": {"L": [S("first"), S("appended")]}, "tally": N(-2)}, r
r = ddb.update_item(TableName=TABLE, Key=key, UpdateExpression="SET hits = :h", ExpressionAttributeValues={":h": N(0)}, ReturnValues="NONE")
assert "Attributes" not in r
code, msg, _ = err(
    ddb.update_item, TableName=TABLE, Key=key, UpdateExpression="SET hits = hits + :one",
    ConditionExpression="hits > :one", ExpressionAttributeValues={":one": N(1)},
)
assert code == "ConditionalCheckFailedException"

# --- validation errors, with AWS's messages ---
def validation(fn, **kw):
    code, msg, _ = err(fn, **kw)
    assert code == "ValidationException", (code, msg)
    return msg

msg = validation(ddb.update_item, TableName=TABLE, Key=key, UpdateExpression="SET hits = = :one", ExpressionAttributeValues={":one": N(1)})
assert msg == 'Invalid UpdateExpression: Syntax error; token: "=", near: "= = :one"', msg
msg = validation(ddb.update_item, TableName=TABLE, Key=key, UpdateExpression="SET hits = :one", ExpressionAttributeValues={":one": N(1), ":two": N(2)})
assert msg == "Value provided in ExpressionAttributeValues unused in expressions: keys: {:two}", msg
msg = validation(ddb.update_item, TableName=TABLE, Key=key, UpdateExpression="SET hits = :nope")
assert "An expression attribute value used in expression is not defined; attribute value: :nope" in msg, msg
msg = validation(ddb.put_item, TableName=TABLE, Item={"pk": S("x")})
assert msg == "One or more parameter values were invalid: Missing the key sk in the item", msg
msg = validation(ddb.put_item, TableName=TABLE, Item={"pk": N(1), "sk": S("x")})
assert msg == "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N", msg
msg = validation(ddb.get_item, TableName=TABLE, Key={"pk": S("x")})
assert msg == "The provided key element does not match the schema", msg
msg = validation(ddb.put_item, TableName=TABLE, Item={"pk": S("x"), "sk": S("y"), "blob": S("x" * (400 * 1024 + 1))})
assert msg == "Item size has exceeded the maximum allowed size", msg
msg = validation(ddb.update_item, TableName=TABLE, Key=key, UpdateExpression="SET status = :one", ExpressionAttributeValues={":one": N(1)})
assert msg == "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: status", msg
msg = validation(ddb.update_item, TableName=TABLE, Key=key, UpdateExpression="SET pk = :one", ExpressionAttributeValues={":one": S("z")})
assert "Cannot update attribute pk. This attribute is part of the key" in msg, msg
msg = validation(ddb.put_item, TableName=TABLE, Item={"pk": S("x"), "sk": S("y"), "st": N(3)})
assert "Type mismatch for Index Key st Expected: S Actual: N IndexName: byStatus" in msg, msg
msg = validation(ddb.put_item, TableName=TABLE, Item={"pk": S("x"), "sk": S("y"), "n": N("1" * 39)})
assert "38 significant digits" in msg, msg
msg = validation(ddb.query, TableName=TABLE, KeyConditionExpression="sk = :s", ExpressionAttributeValues={":s": S("a")})
assert msg == "Query condition missed key schema element: pk", msg
msg = validation(ddb.scan, TableName=TABLE, FilterExpression="a = :x AND", ExpressionAttributeValues={":x": N(1)})
assert msg.startswith('Invalid FilterExpression: Syntax error; token: "<EOF>"'), msg

# --- query, scan, pagination, indexes ---
with table.batch_writer() as bw:
    for i in range(30):
        bw.put_item(Item={"pk": "order", "sk": "o#%03d" % i, "n": i, "st": "open" if i % 3 == 0 else "done", "amount": Decimal("1.5") * i})
    for i in range(5):
        bw.put_item(Item={"pk": "other", "sk": "x#%d" % i})
r = table.query(KeyConditionExpression=Key("pk").eq("order") & Key("sk").begins_with("o#01"))
assert [it["sk"] for it in r["Items"]] == ["o#%03d" % i for i in range(10, 20)], r["Items"]
r = table.query(KeyConditionExpression=Key("pk").eq("order") & Key("sk").between("o#005", "o#007"), ScanIndexForward=False)
assert [it["sk"] for it in r["Items"]] == ["o#007", "o#006", "o#005"]
assert r["Items"][0]["amount"] == Decimal("10.5")
r = table.query(KeyConditionExpression=Key("pk").eq("order"), FilterExpression=Attr("n").gte(25), Limit=28)
assert r["Count"] == 3 and r["ScannedCount"] == 28 and "LastEvaluatedKey" in r, r
seen, start, pages = [], None, 0
while True:
    kw = {"ExclusiveStartKey": start} if start else {}
    r = table.query(KeyConditionExpression=Key("pk").eq("order"), Limit=7, **kw)
    seen += [it["sk"] for it in r["Items"]]
    pages += 1
    start = r.get("LastEvaluatedKey")
    if not start:
        break
assert seen == ["o#%03d" % i for i in range(30)] and pages == 5, (seen, pages)
r = ddb.query(TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": S("order")}, Select="COUNT")
assert r["Count"] == 30 and "Items" not in r
r = table.query(IndexName="byStatus", KeyConditionExpression=Key("st").eq("open") & Key("n").gt(10))
assert [int(it["n"]) for it in r["Items"]] == [12, 15, 18, 21, 24, 27], r["Items"]
# Sparse: items without `st` are not in the index.
r = ddb.scan(TableName=TABLE, IndexName="byStatus", Select="COUNT")
assert r["Count"] == 30, r
seen, start = [], None
while True:
    kw = {"ExclusiveStartKey": start} if start else {}
    r = table.query(IndexName="byStatus", KeyConditionExpression=Key("st").eq("done"), Limit=4, ScanIndexForward=False, **kw)
    seen += [int(it["n"]) for it in r["Items"]]
    start = r.get("LastEvaluatedKey")
    if not start:
        break
assert seen == sorted([i for i in range(30) if i % 3 != 0], reverse=True), seen
code, msg, _ = err(table.query, IndexName="nope", KeyConditionExpression=Key("st").eq("open"))
assert code == "ValidationException" and "does not have the specified index: nope" in msg, msg

everything = []
for page in ddb.get_paginator("scan").paginate(TableName=TABLE, PaginationConfig={"PageSize": 8}):
    everything += [(it["pk"]["S"], it["sk"]["S"]) for it in page["Items"]]
assert len(everything) == len(set(everything)) and ("order", "o#029") in everything and ("other", "x#4") in everything
parts = []
for seg in range(3):
    parts += [(it["pk"], it["sk"]) for it in table.scan(Segment=seg, TotalSegments=3)["Items"]]
assert sorted(parts) == sorted(everything), (len(parts), len(everything))
r = table.scan(FilterExpression=Attr("st").eq("open") & Attr("n").lt(7))
assert sorted(int(it["n"]) for it in r["Items"]) == [0, 3, 6]

# --- batches ---
keys = [{"pk": S("order"), "sk": S("o#%03d" % i)} for i in (1, 2, 99)]
r = ddb.batch_get_item(RequestItems={TABLE: {"Keys": keys, "ProjectionExpression": "sk"}})
assert sorted(it["sk"]["S"] for it in r["Responses"][TABLE]) == ["o#001", "o#002"] and r["UnprocessedKeys"] == {}
r = ddb.batch_write_item(RequestItems={TABLE: [{"DeleteRequest": {"Key": k}} for k in keys[:2]] + [{"PutRequest": {"Item": {"pk": S("b"), "sk": S("1")}}}]})
assert r["UnprocessedItems"] == {}
assert "Item" not in ddb.get_item(TableName=TABLE, Key=keys[0])
code, msg, _ = err(ddb.batch_write_item, RequestItems={TABLE: [{"PutRequest": {"Item": {"pk": S("b"), "sk": S("1")}}}] * 2})
assert code == "ValidationException" and "duplicates" in msg, msg

# --- transactions ---
acct = lambda n: {"pk": S("acct"), "sk": S(n)}
ddb.put_item(TableName=TABLE, Item={**acct("a"), "bal": N(100)})
ddb.put_item(TableName=TABLE, Item={**acct("b"), "bal": N(0)})
ddb.transact_write_items(TransactItems=[
    {"Update": {"TableName": TABLE, "Key": acct("a"), "UpdateExpression": "SET bal = bal - :x", "ConditionExpression": "bal >= :x", "ExpressionAttributeValues": {":x": N(60)}}},
    {"Update": {"TableName": TABLE, "Key": acct("b"), "UpdateExpression": "SET bal = bal + :x", "ExpressionAttributeValues": {":x": N(60)}}},
    {"Put": {"TableName": TABLE, "Item": {**acct("entries"), "amt": N(60)}, "ConditionExpression": "attribute_not_exists(pk)"}},
])
try:
    ddb.transact_write_items(TransactItems=[
        {"Update": {"TableName": TABLE, "Key": acct("a"), "UpdateExpression": "SET bal = bal - :x", "ConditionExpression": "bal >= :x", "ExpressionAttributeValues": {":x": N(60)}, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
        {"Update": {"TableName": TABLE, "Key": acct("b"), "UpdateExpression": "SET bal = bal + :x", "ExpressionAttributeValues": {":x": N(60)}}},
        {"ConditionCheck": {"TableName": TABLE, "Key": acct("entries"), "ConditionExpression": "attribute_exists(pk)"}},
    ])
    raise AssertionError("the transaction should be cancelled")
except ddb.exceptions.TransactionCanceledException as e:
    reasons = e.response["CancellationReasons"]
    assert [x["Code"] for x in reasons] == ["ConditionalCheckFailed", "None", "None"], reasons
    assert reasons[0]["Item"]["bal"] == N(40), reasons
    assert "[ConditionalCheckFailed, None, None]" in e.response["Error"]["Message"], e.response
r = ddb.transact_get_items(TransactItems=[{"Get": {"TableName": TABLE, "Key": acct(n)}} for n in ("a", "b", "zz")])
assert [x.get("Item", {}).get("bal") for x in r["Responses"]] == [N(40), N(60), None], r
code, msg, _ = err(ddb.transact_write_items, TransactItems=[
    {"Put": {"TableName": TABLE, "Item": acct("a")}},
    {"Delete": {"TableName": TABLE, "Key": acct("a")}},
])
assert code == "ValidationException" and "multiple operations on one item" in msg, msg

# --- the resource API with conditions ---
table.put_item(Item={"pk": "res", "sk": "1", "v": 1, "f": 1.25 and Decimal("1.25")})
table.update_item(Key={"pk": "res", "sk": "1"}, UpdateExpression="ADD v :n", ExpressionAttributeValues={":n": 4}, ConditionExpression=Attr("v").eq(1))
assert table.get_item(Key={"pk": "res", "sk": "1"})["Item"]["v"] == 5

# --- wrong signature ---
bad = boto3.client("dynamodb", aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key="wrong" + env["AWS_SECRET_ACCESS_KEY"][5:])
code, _, _ = err(bad.list_tables)
assert code == "InvalidSignatureException", code

# --- the change stream: the recorder got INSERT, MODIFY, REMOVE for one item, in order ---
ddb.put_item(TableName=TABLE, Item={"pk": S("stream"), "sk": S("1"), "v": N(1)})
ddb.update_item(TableName=TABLE, Key={"pk": S("stream"), "sk": S("1")}, UpdateExpression="SET v = :two", ExpressionAttributeValues={":two": N(2)})
ddb.delete_item(TableName=TABLE, Key={"pk": S("stream"), "sk": S("1")})


def records(name):
    d = os.path.join(record_dir, name)
    out = []
    for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if f.endswith(".json"):
            with open(os.path.join(d, f)) as fh:
                out.append(json.load(fh))
    return out


deadline = time.time() + 20
mine = []
while time.time() < deadline:
    mine = [r for ev in records("recorder") for r in ev["Records"] if r["dynamodb"]["Keys"]["pk"] == S("stream")]
    if len(mine) >= 3:
        break
    time.sleep(0.1)
assert [r["eventName"] for r in mine] == ["INSERT", "MODIFY", "REMOVE"], mine
ins, mod, rem = mine
assert ins["eventVersion"] == "1.1" and ins["eventSource"] == "aws:dynamodb" and ins["awsRegion"] == "us-east-1"
assert ins["eventSourceARN"] == desc["LatestStreamArn"], (ins["eventSourceARN"], desc["LatestStreamArn"])
assert ins["dynamodb"]["Keys"] == {"pk": S("stream"), "sk": S("1")}
assert ins["dynamodb"]["NewImage"] == {"pk": S("stream"), "sk": S("1"), "v": N(1)} and "OldImage" not in ins["dynamodb"]
assert mod["dynamodb"]["OldImage"]["v"] == N(1) and mod["dynamodb"]["NewImage"]["v"] == N(2)
assert rem["dynamodb"]["OldImage"]["v"] == N(2) and "NewImage" not in rem["dynamodb"]
assert ins["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES" and ins["dynamodb"]["SizeBytes"] > 0
assert isinstance(ins["dynamodb"]["ApproximateCreationDateTime"], (int, float))
seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in mine]
assert seqs == sorted(seqs) and len(set(seqs)) == 3, seqs
assert len({r["eventID"] for r in mine}) == 3
# Every change of the table went to the trigger, in sequence order.
all_seqs = [int(r["dynamodb"]["SequenceNumber"]) for ev in records("recorder") for r in ev["Records"]]
assert all_seqs == sorted(all_seqs), all_seqs

# Retries: the flaky trigger's function fails twice, then gets the same records.
flaky = boto3.client("dynamodb")
flaky.put_item(TableName=env["FLAKY_TABLE"], Item={"id": S("r1")})
deadline = time.time() + 30
while time.time() < deadline and len(records("flaky")) < 3:
    time.sleep(0.1)
got = records("flaky")
assert len(got) == 3, len(got)
assert got[0]["Records"] == got[2]["Records"], got
assert got[2]["Records"][0]["dynamodb"]["Keys"] == {"id": S("r1")}

print("ok")
