"""How long an S3 server takes to answer a signed PutObject after its body, with a raw client
(no SDK on the timed path): the headers with `Expect: 100-continue`, the wait for `100`, the
body in one `sendall`, the wait for the answer; medians over N PUTs of the same keep-alive
connection (keys raw0..raw49 of bucket `bench`, overwritten in turn).

    python scripts/bench_put_latency.py PORT KEY SECRET N   [SIZE=1048576] [SHA=UNSIGNED-PAYLOAD]

SIZE sets the body size (default 4096); SHA replaces the payload's SHA-256 in
`x-amz-content-sha256` (e.g. UNSIGNED-PAYLOAD). The bucket must exist. Used for the figures
in BENCHMARKS.md that say "raw client"; needs botocore (the peers venv) only to sign.
"""

import hashlib
import os
import socket
import statistics
import sys
import time

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

port, key, secret, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
body = os.urandom(int(os.environ.get("SIZE", "4096")))
sha = os.environ.get("SHA") or hashlib.sha256(body).hexdigest()
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
t100, tfin, tot = [], [], []
for i in range(n):
    path = "/bench/raw%d" % (i % 50)
    req = AWSRequest(method="PUT", url="http://127.0.0.1:%d%s" % (port, path), data=body,
                     headers={"Expect": "100-continue", "x-amz-content-sha256": sha})
    S3SigV4Auth(Credentials(key, secret), "s3", "us-east-1").add_auth(req)
    head = "PUT %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % (path, port)
    for k, v in req.prepare().headers.items():
        if k.lower() != "host":
            head += "%s: %s\r\n" % (k, v.decode() if isinstance(v, bytes) else v)
    head += "\r\n"
    t0 = time.perf_counter()
    s.sendall(head.encode())
    r = s.recv(4096)
    t1 = time.perf_counter()
    assert r.startswith(b"HTTP/1.1 100"), r
    s.sendall(body)
    r = b""
    while b"\r\n\r\n" not in r:
        r += s.recv(65536)
    t2 = time.perf_counter()
    assert b" 200 " in r.split(b"\r\n")[0], r
    t100.append(t1 - t0)
    tfin.append(t2 - t1)
    tot.append(t2 - t0)
print("100-continue after %.3f ms; answer after body %.3f ms; total %.3f ms (medians of %d)"
      % (1000 * statistics.median(t100), 1000 * statistics.median(tfin), 1000 * statistics.median(tot), n))
