"""The `hello` function: greets the name in the path (`GET /hello/{name}`), or the world."""


def handler(event, context):
    name = (event.get("pathParameters") or {}).get("name") or "world"
    return {"statusCode": 200, "body": f"Hello, {name}!"}
