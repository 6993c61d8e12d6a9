"""`notify`: subscribed to the `done` topic; gets each result as an SNS event."""

import json


def handler(event, context):
    for record in event["Records"]:
        result = json.loads(record["Sns"]["Message"])
        print(f"notify: job {result['id']} ({result['task']}) is {result['status']}")
    return {}
