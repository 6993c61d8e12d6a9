"""The same boto3 script against several S3 servers: PutObject and GetObject of 4 KiB and 1 MiB,
with 1 and 4 client threads (one boto3 client per thread, keep-alive), each operation's rounds
alternating between the servers; prints ops/s per round and the median, as a Markdown table.

    python scripts/bench_s3.py --ops 300 --rounds 3 \
        --target local=http://127.0.0.1:P,KEY,SECRET --target moto=http://127.0.0.1:Q,x,x ...

Run by scripts/bench-s3.sh, which starts the servers. `--null-server PORT` instead serves
canned S3 answers on 127.0.0.1:PORT (the client's own ceiling) until killed.
"""

import argparse
import os
import statistics
import sys
import threading
import time


def null_server(port):
    """Canned answers shaped like S3's, so that the client does all the work a real answer
    makes it do: a PutObject answer echoes the request's `x-amz-checksum-crc32` (as S3 does), a
    GetObject answer carries its body's CRC32 when the client asks for it
    (`x-amz-checksum-mode: ENABLED`, which boto3 sends), which the client then verifies."""
    import base64
    import zlib
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    blobs = {"4k": b"x" * 4096, "1m": b"x" * (1 << 20)}
    crc = {k: base64.b64encode(zlib.crc32(v).to_bytes(4, "big")).decode() for k, v in blobs.items()}
    etag = '"0123456789abcdef0123456789abcdef"'

    # A key with "gib" in it is a 1 GiB object of zeros, uploaded in parts and read in ranges
    # (the AWS CLI's `s3 cp` against this server: the CLI's own ceiling).
    gib = 1 << 30
    zeros = bytes(8 << 20)

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Without it small answers wait ~40 ms on delayed ACKs.
        disable_nagle_algorithm = True

        def log_message(self, *a):
            pass

        def _drain(self):
            n = int(self.headers.get("Content-Length") or 0)
            while n > 0:
                n -= len(self.rfile.read(min(n, 1 << 20)))

        def do_PUT(self):
            self._drain()
            self.send_response(200)
            self.send_header("ETag", etag)
            if self.headers.get("x-amz-checksum-crc32"):
                self.send_header("x-amz-checksum-crc32", self.headers["x-amz-checksum-crc32"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _xml(self, body):
            body = ('<?xml version="1.0" encoding="UTF-8"?>' + body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            self._drain()
            bucket, _, key = self.path.split("?")[0].lstrip("/").partition("/")
            if "uploads" in self.path.split("?", 1)[-1].split("&"):
                self._xml("<InitiateMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key>"
                          "<UploadId>null-upload</UploadId></InitiateMultipartUploadResult>" % (bucket, key))
            else:
                self._xml("<CompleteMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key>"
                          "<ETag>%s</ETag></CompleteMultipartUploadResult>" % (bucket, key, etag[:-1] + '-1"'))

        def _gib(self, head):
            start, end = 0, gib - 1
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                a, _, b = rng[6:].partition("-")
                start, end = int(a), min(int(b) if b else gib - 1, gib - 1)
            self.send_response(206 if rng else 200)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", "Mon, 30 Nov 2026 12:00:00 GMT")
            if rng:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, gib))
            self.send_header("Content-Type", "binary/octet-stream")
            self.send_header("Content-Length", str(end - start + 1))
            self.end_headers()
            n = 0 if head else end - start + 1
            while n > 0:
                k = min(n, len(zeros))
                self.wfile.write(zeros[:k] if k < len(zeros) else zeros)
                n -= k

        def do_HEAD(self):
            if "gib" in self.path:
                return self._gib(True)
            return self.do_GET()

        def do_GET(self):
            if "gib" in self.path:
                return self._gib(False)
            name = "1m" if "1m" in self.path else "4k"
            body = blobs[name]
            self.send_response(200)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", "Mon, 30 Nov 2026 12:00:00 GMT")
            if (self.headers.get("x-amz-checksum-mode") or "").upper() == "ENABLED":
                self.send_header("x-amz-checksum-crc32", crc[name])
            self.send_header("Content-Type", "binary/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()


def client(url, key, secret):
    import boto3
    from botocore.config import Config

    s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id=key, aws_secret_access_key=secret,
                      region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
    try:
        s3.create_bucket(Bucket="bench")
    except Exception:
        pass
    return s3


def one_round(clients, op, size_name, body, n):
    """`n` operations shared by the clients, one thread each; thread `t` takes the keys
    `t, t + threads, ...` (the same keys the PutObject rounds wrote)."""
    def work(t, s3):
        for i in range(t, n, len(clients)):
            k = "obj-%s-%d" % (size_name, i)
            if op == "put":
                s3.put_object(Bucket="bench", Key=k, Body=body)
            else:
                s3.get_object(Bucket="bench", Key=k)["Body"].read()

    ts = [threading.Thread(target=work, args=(t, s3)) for t, s3 in enumerate(clients)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return n / (time.perf_counter() - t0)


def bench(targets, ops, rounds, threads):
    """Every operation's rounds alternate between the servers (round 1 on each, then round 2 on
    each, ...), so that a slow spell of the shared machine falls on all of them alike."""
    clients = {name: [client(*t) for _ in range(max(threads))] for name, t in targets.items()}
    out = {name: {} for name in targets}
    for size_name, size in [("4k", 4096), ("1m", 1 << 20)]:
        body = os.urandom(size)
        n = ops if size_name == "4k" else max(ops // 5, 20)
        for op in ["put", "get"]:
            for th in threads:
                label = "%s %s|%d" % (op, size_name, th)
                print("bench_s3: %s, %d client thread(s) ..." % (label.split("|")[0], th), file=sys.stderr, flush=True)
                for name in targets:
                    out[name][label] = []
                for _ in range(rounds):
                    for name, cs in clients.items():
                        out[name][label].append(one_round(cs[:th], op, size_name, body, n))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", action="append", default=[])
    ap.add_argument("--ops", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", default="1,4", help="client thread counts, comma-separated")
    ap.add_argument("--null-server", type=int)
    a = ap.parse_args()
    if a.null_server:
        null_server(a.null_server)
        return
    targets = {}
    for t in a.target:
        name, rest = t.split("=", 1)
        targets[name] = tuple(rest.split(","))
    threads = [int(x) for x in a.threads.split(",")]
    results = bench(targets, a.ops, a.rounds, threads)
    names = list(results)
    ops = list(results[names[0]])
    print("| operation (ops/s, median of %d rounds) | client threads | %s |" % (a.rounds, " | ".join(names)))
    print("|---|---|" + "---|" * len(names))
    for op in ops:
        med = {n: statistics.median(results[n][op]) for n in names}
        cells = []
        for n in names:
            cell = "%.0f" % med[n]
            if "null" in med and n != "null":
                cell += " (%.0f%%)" % (100 * med[n] / med["null"])
            cells.append(cell)
        label, th = op.split("|")
        print("| %s | %s | %s |" % (label, th, " | ".join(cells)))
    print()
    print("rounds: " + "; ".join("%s %s: %s" % (n, op.replace("|", " x"), "/".join("%.0f" % r for r in results[n][op]))
                                 for n in names for op in ops))


if __name__ == "__main__":
    main()
