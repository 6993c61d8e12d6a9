"""`sweep`: run by the `cleanup` schedule; deletes the uploads older than a day.

It receives what EventBridge Scheduler sends (here `{}`, the schedule has no payload). Invoked by
hand, the event may set the age: `{"max_age_secs": 0}` deletes every upload.
"""

import os
from datetime import datetime, timedelta, timezone

import boto3

s3 = boto3.client("s3")
BUCKET = os.environ["UPLOADS_BUCKET"]
DAY = 24 * 3600


def handler(event, context):
    max_age = int((event or {}).get("max_age_secs", DAY))
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=max_age)
    seen, old = 0, []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="incoming/"):
        for obj in page.get("Contents", []):
            seen += 1
            if obj["LastModified"] <= cutoff:
                old.append({"Key": obj["Key"]})
    for start in range(0, len(old), 1000):
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": old[start : start + 1000], "Quiet": True})
    print(f"sweep: deleted {len(old)} of {seen} upload(s) older than {max_age} s")
    return {"deleted": len(old), "seen": seen}
