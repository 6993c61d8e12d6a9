"""`POST /uploads`: answers a presigned URL that lets the client PUT one file into the bucket.

The body is optional: `{"name": "cat.png"}` names the file (letters, digits, `.`, `-`, `_`).
The answer is `{"url": ..., "key": "incoming/<id>/cat.png", "expires_in": 300}`; the client
uploads with `curl -X PUT --upload-file cat.png "$url"`, straight to the bucket.
"""

import base64
import json
import os
import re
import uuid

import boto3
from botocore.config import Config

# Created once per execution environment and reused by warm invocations. boto3 finds the
# endpoint, credentials and region in the environment (the local cloud sets AWS_ENDPOINT_URL).
s3 = boto3.client("s3", config=Config(signature_version="s3v4"))
BUCKET = os.environ["UPLOADS_BUCKET"]
EXPIRES_IN = 300
NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def answer(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def handler(event, context):
    body = event.get("body") or "{}"
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    try:
        request = json.loads(body)
    except ValueError:
        request = None
    name = request.get("name", "upload") if isinstance(request, dict) else None
    if not isinstance(name, str) or not NAME.match(name):
        return answer(
            400, {"error": 'send a JSON object with a file "name" (letters, digits, ".-_"), e.g. {"name": "cat.png"}'}
        )
    key = f"incoming/{uuid.uuid4()}/{name}"
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=EXPIRES_IN
    )
    print(f"presign: {key} may be uploaded for {EXPIRES_IN} s")
    return answer(200, {"url": url, "key": key, "expires_in": EXPIRES_IN})
