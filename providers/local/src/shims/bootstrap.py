# skyform's Lambda Runtime API client for Python (a small stand-in for awslambdaric).
# Loads HANDLER ("module.function", module relative to LAMBDA_TASK_ROOT), then loops:
# GET next invocation -> call the handler -> POST its response or error.
import http.client
import importlib
import json
import os
import sys
import time
import traceback

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = "/2018-06-01/runtime"
_host, _port = API.rsplit(":", 1)
_conn = http.client.HTTPConnection(_host, int(_port))


def _request(method, path, body=None, headers=None):
    global _conn
    for attempt in (0, 1):
        try:
            _conn.request(method, BASE + path, body=body, headers=headers or {})
            resp = _conn.getresponse()
            return resp, resp.read()
        except (http.client.HTTPException, ConnectionError):
            if attempt:
                raise
            _conn.close()
            _conn = http.client.HTTPConnection(_host, int(_port))


def _error_body(exc):
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }


def _post_error(path, err):
    body = json.dumps(err).encode()
    _request("POST", path, body, {
        "Content-Type": "application/json",
        "Lambda-Runtime-Function-Error-Type": err.get("errorType", "Unhandled"),
    })


class Context:
    def __init__(self, headers):
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms") or 0)
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        cc = headers.get("Lambda-Runtime-Client-Context")
        self.client_context = json.loads(cc) if cc else None
        ci = headers.get("Lambda-Runtime-Cognito-Identity")
        self.identity = json.loads(ci) if ci else None

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _load_handler():
    spec = os.environ["_HANDLER"]
    modname, _, fname = spec.rpartition(".")
    if not modname:
        raise ValueError("Bad handler '%s': expected 'module.function'" % spec)
    root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    if root not in sys.path:
        sys.path.insert(0, root)
    modname = modname.replace("/", ".")
    try:
        module = importlib.import_module(modname)
    except Exception as exc:
        err = _error_body(exc)
        err["errorMessage"] = "Unable to import module '%s': %s" % (modname, exc)
        err["errorType"] = "Runtime.ImportModuleError"
        raise _InitError(err)
    fn = getattr(module, fname, None)
    if fn is None:
        raise _InitError({
            "errorMessage": "Handler '%s' missing on module '%s'" % (fname, modname),
            "errorType": "Runtime.HandlerNotFound",
            "stackTrace": [],
        })
    return fn


class _InitError(Exception):
    def __init__(self, body):
        super().__init__(body["errorMessage"])
        self.body = body


def main():
    try:
        handler = _load_handler()
    except _InitError as e:
        print("[ERROR] %s: %s" % (e.body["errorType"], e.body["errorMessage"]), file=sys.stderr, flush=True)
        _post_error("/init/error", e.body)
        sys.exit(1)
    while True:
        resp, body = _request("GET", "/invocation/next")
        ctx = Context(_CaseInsensitive(resp))
        request_id = ctx.aws_request_id
        try:
            event = json.loads(body) if body else None
            result = handler(event, ctx)
            out = json.dumps(result).encode()
        except Exception as exc:
            err = _error_body(exc)
            err["requestId"] = request_id
            print("[ERROR] %s: %s" % (err["errorType"], err["errorMessage"]), file=sys.stderr)
            traceback.print_exc()
            sys.stderr.flush()
            sys.stdout.flush()
            _post_error("/invocation/%s/error" % request_id, err)
            continue
        sys.stdout.flush()
        _request("POST", "/invocation/%s/response" % request_id, out, {"Content-Type": "application/json"})


class _CaseInsensitive:
    def __init__(self, resp):
        self._resp = resp

    def get(self, name, default=None):
        return self._resp.getheader(name, default)


if __name__ == "__main__":
    main()
