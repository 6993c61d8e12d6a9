# skyform's Lambda Runtime API client for Python (a small stand-in for awslambdaric).
# Loads HANDLER ("module.function", module relative to LAMBDA_TASK_ROOT), then loops:
# GET next invocation -> call the handler -> POST its response or error.
import importlib
import json
import os
import socket
import sys
import time
import traceback

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = "/2018-06-01/runtime"
_host, _port = API.rsplit(":", 1)
_port = int(_port)
_HOSTHDR = ("Host: %s\r\n" % API).encode()

# The Runtime API client: one persistent TCP connection (TCP_NODELAY), each request sent with
# one write, responses parsed by hand. http.client parses headers with the email package,
# which cost more CPU per invocation than everything else in the process (and importing it
# costs cold start time). The server is skyform's own Runtime API, which answers with a
# Content-Length; chunked bodies are handled anyway.
_sock = None
_buf = b""


def _connect():
    global _sock, _buf
    s = socket.create_connection((_host, _port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _sock, _buf = s, b""


def _fill():
    global _buf
    data = _sock.recv(65536)
    if not data:
        raise ConnectionError("Runtime API connection closed")
    _buf += data


def _read_response():
    global _buf
    while True:
        end = _buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        _fill()
    lines = _buf[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    _buf = _buf[end + 4:]
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            while b"\r\n" not in _buf:
                _fill()
            size_line, _, _buf = _buf.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(_buf) < size + 2:
                _fill()
            parts.append(_buf[:size])
            _buf = _buf[size + 2:]
            if size == 0:
                break
        return status, headers, b"".join(parts)
    length = int(headers.get("content-length") or 0)
    while len(_buf) < length:
        _fill()
    body, _buf = _buf[:length], _buf[length:]
    return status, headers, body


def _encode(method, path, body=None, headers=None):
    head = [("%s %s%s HTTP/1.1\r\n" % (method, BASE, path)).encode(), _HOSTHDR]
    for k, v in (headers or {}).items():
        head.append(("%s: %s\r\n" % (k, v)).encode())
    if body is not None:
        head.append(b"Content-Length: %d\r\n" % len(body))
    head.append(b"\r\n")
    if body is not None:
        head.append(body)
    return b"".join(head)


_NEXT = _encode("GET", "/invocation/next")


def _send(*requests):
    """Sends the requests in one write (HTTP/1.1 pipelining); returns the last response."""
    msg = b"".join(requests)
    for attempt in (0, 1):
        try:
            if _sock is None:
                _connect()
            _sock.sendall(msg)
            for _ in requests:
                r = _read_response()
            return r
        except (OSError, ValueError, IndexError):
            # A connection the server closed while idle: reconnect once.
            _close()
            if attempt:
                raise


def _close():
    global _sock
    if _sock is not None:
        try:
            _sock.close()
        except OSError:
            pass
    _sock = None


# Tracebacks name the user's files: a file of the artifact (LAMBDA_TASK_ROOT) that is also in
# the function's folder in the project (SKYFORM_SOURCE_DIR) is shown under the latter.
_ROOT = os.path.realpath(os.environ.get("LAMBDA_TASK_ROOT", os.getcwd()))
_SOURCE = os.environ.get("SKYFORM_SOURCE_DIR")


def _user_path(filename):
    if not _SOURCE or not filename:
        return filename
    full = os.path.realpath(filename)
    if not full.startswith(_ROOT + os.sep):
        return filename
    mapped = os.path.join(_SOURCE, full[len(_ROOT) + 1:])
    return mapped if os.path.exists(mapped) else filename


_SELF = os.path.realpath(__file__)


def _frames(tb):
    # The user's frames: not this client's, not the import machinery's.
    frames = traceback.StackSummary.from_list([
        f for f in traceback.extract_tb(tb)
        if not (f.filename.startswith("<frozen") or os.path.realpath(f.filename) == _SELF
                or os.sep + "importlib" + os.sep in f.filename)
    ])
    for f in frames:
        f.filename = _user_path(f.filename)
    return frames


def _format_exc(exc):
    frames = _frames(exc.__traceback__)
    lines = ["Traceback (most recent call last):\n"] + traceback.format_list(frames)
    if isinstance(exc, SyntaxError) and exc.filename:
        exc.filename = _user_path(exc.filename)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def _error_body(exc):
    if isinstance(exc, SyntaxError) and exc.filename:
        exc.filename = _user_path(exc.filename)
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_list(_frames(exc.__traceback__)),
    }


def _error_request(path, err):
    return _encode("POST", path, json.dumps(err).encode(), {
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
    # What Lambda's runtime provides (boto3) comes after the function's own packages.
    runtime_dir = os.environ.get("LAMBDA_RUNTIME_DIR")
    if runtime_dir and runtime_dir != root and runtime_dir not in sys.path:
        sys.path.append(runtime_dir)
    modname = modname.replace("/", ".")
    try:
        module = importlib.import_module(modname)
    except Exception as exc:
        err = _error_body(exc)
        err["errorMessage"] = "Unable to import module '%s': %s" % (modname, exc)
        syntax = isinstance(exc, SyntaxError)
        err["errorType"] = "Runtime.UserCodeSyntaxError" if syntax else "Runtime.ImportModuleError"
        # A syntax error's file and line are what to fix: show them under the error line.
        raise _InitError(err, _format_exc(exc) if syntax else "")
    fn = getattr(module, fname, None)
    if fn is None:
        raise _InitError({
            "errorMessage": "Handler '%s' missing on module '%s'" % (fname, modname),
            "errorType": "Runtime.HandlerNotFound",
            "stackTrace": [],
        })
    return fn


class _InitError(Exception):
    def __init__(self, body, trace=""):
        super().__init__(body["errorMessage"])
        self.body = body
        self.trace = trace


def main():
    try:
        handler = _load_handler()
    except _InitError as e:
        print("[ERROR] %s: %s" % (e.body["errorType"], e.body["errorMessage"]), file=sys.stderr)
        sys.stderr.write(e.trace)
        sys.stderr.flush()
        _send(_error_request("/init/error", e.body))
        sys.exit(1)
    # The answer to one invocation and the poll for the next go out in one write; the 202
    # and the next event then come back on the same connection. A runtime client that waits
    # for the 202 first (as the official ones do) works the same; this saves a wake-up.
    _, headers, body = _send(_NEXT)
    while True:
        ctx = Context(_Headers(headers))
        request_id = ctx.aws_request_id
        # As Lambda does: the AWS SDKs send it on as X-Amzn-Trace-Id (the trace goes on).
        os.environ["_X_AMZN_TRACE_ID"] = headers.get("lambda-runtime-trace-id", "")
        try:
            event = json.loads(body) if body else None
            result = handler(event, ctx)
            out = json.dumps(result).encode()
        except Exception as exc:
            err = _error_body(exc)
            err["requestId"] = request_id
            print("[ERROR] %s: %s" % (err["errorType"], err["errorMessage"]), file=sys.stderr)
            sys.stderr.write(_format_exc(exc))
            sys.stderr.flush()
            sys.stdout.flush()
            post = _error_request("/invocation/%s/error" % request_id, err)
        else:
            sys.stdout.flush()
            post = _encode("POST", "/invocation/%s/response" % request_id, out,
                           {"Content-Type": "application/json"})
        _, headers, body = _send(post, _NEXT)


class _Headers:
    """Response headers looked up case-insensitively (they are stored lower-cased)."""

    def __init__(self, headers):
        self._h = headers

    def get(self, name, default=None):
        return self._h.get(name.lower(), default)


if __name__ == "__main__":
    main()
