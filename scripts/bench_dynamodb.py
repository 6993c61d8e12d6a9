"""The same boto3 script against several DynamoDB servers: PutItem and GetItem of a small item
and a Query answering 100 items, with 1 and 4 client threads (one client per thread,
keep-alive); prints ops/s per round and the median, as a Markdown table.

    python scripts/bench_dynamodb.py --ops 300 --rounds 3 \
        --target local=http://127.0.0.1:P,KEY,SECRET --target moto=http://127.0.0.1:Q,x,x ...

Run by scripts/bench-dynamodb.sh, which starts the servers. `--null-server PORT` instead serves
canned DynamoDB answers on 127.0.0.1:PORT (the client's own ceiling) until killed.
"""

import argparse
import json
import socket
import statistics
import threading
import time

ITEM = {"pk": {"S": "p"}, "sk": {"S": "k"}, "body": {"S": "x" * 200}, "n": {"N": "42"}}


def null_server(port):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hundred = json.dumps({"Items": [dict(ITEM, sk={"S": "q%03d" % i}) for i in range(100)], "Count": 100, "ScannedCount": 100}).encode()
    table = {"TableName": "bench", "TableStatus": "ACTIVE", "KeySchema": [], "AttributeDefinitions": []}
    answers = {
        "PutItem": b"{}",
        "GetItem": json.dumps({"Item": ITEM}).encode(),
        "Query": hundred,
        "BatchWriteItem": b'{"UnprocessedItems": {}}',
        "CreateTable": json.dumps({"TableDescription": table}).encode(),
        "DescribeTable": json.dumps({"Table": table}).encode(),
    }

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def setup(self):
            super().setup()
            # Headers and body go in two writes: without this, delayed ACKs stall each answer.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            op = (self.headers.get("X-Amz-Target") or "").split(".")[-1]
            body = answers.get(op, b"{}")
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()


def client(url, key, secret):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        endpoint_url=url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, max_pool_connections=8),
    )


def setup(c):
    try:
        c.create_table(
            TableName="bench",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except c.exceptions.ResourceInUseException:
        pass
    for _ in range(100):
        if c.describe_table(TableName="bench")["Table"]["TableStatus"] == "ACTIVE":
            break
        time.sleep(0.1)
    for b in range(4):
        reqs = [{"PutRequest": {"Item": dict(ITEM, pk={"S": "q"}, sk={"S": "q%03d" % (b * 25 + i)})}} for i in range(25)]
        c.batch_write_item(RequestItems={"bench": reqs})


def op_fn(c, op, tid):
    if op == "PutItem":
        n = [0]

        def f():
            n[0] += 1
            c.put_item(TableName="bench", Item=dict(ITEM, sk={"S": "t%d-%d" % (tid, n[0])}))

        return f
    if op == "GetItem":
        return lambda: c.get_item(TableName="bench", Key={"pk": {"S": "q"}, "sk": {"S": "q007"}})
    return lambda: c.query(
        TableName="bench", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "q"}}
    )


def run(target, op, threads, ops):
    url, key, secret = target
    clients = [client(url, key, secret) for _ in range(threads)]
    fns = [op_fn(c, op, i) for i, c in enumerate(clients)]
    for f in fns:
        f()  # warm the connection
    per = ops // threads

    def work(f):
        for _ in range(per):
            f()

    ts = [threading.Thread(target=work, args=(f,)) for f in fns]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return per * threads / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--null-server", type=int)
    ap.add_argument("--target", action="append", default=[])
    ap.add_argument("--ops", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if a.null_server:
        null_server(a.null_server)
        return
    targets = []
    for t in a.target:
        name, rest = t.split("=", 1)
        targets.append((name, tuple(rest.split(","))))
    for _, t in targets:
        setup(client(*t))
    rows = []
    for op in ["PutItem", "GetItem", "Query"]:
        for threads in [1, 4]:
            # Rounds alternate between the servers, so a slow spell of a shared machine falls
            # on all of them alike.
            rounds = {name: [] for name, _ in targets}
            for _ in range(a.rounds):
                for name, t in targets:
                    rounds[name].append(run(t, op, threads, a.ops))
            medians = {name: statistics.median(r) for name, r in rounds.items()}
            rows.append((op, threads, medians))
    names = [n for n, _ in targets]
    print("| operation | client threads | " + " | ".join(names) + " | local / null |")
    print("|---|---|" + "---|" * len(names) + "---|")
    for op, threads, m in rows:
        cells = " | ".join("%.0f" % m[n] for n in names)
        ratio = "%.0f%%" % (100 * m["local"] / m["null"]) if m.get("local") and m.get("null") else ""
        label = op + (" (100 items)" if op == "Query" else "")
        print("| %s | %d | %s | %s |" % (label, threads, cells, ratio))


if __name__ == "__main__":
    main()
