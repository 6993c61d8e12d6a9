#!/usr/bin/env python3
"""Edit-to-served time: how long after a handler file is saved the first HTTP request is
answered by the new code, under `skyform dev` and under serverless-offline `--reloadHandler`,
side by side in one run. Run through scripts/bench-dev.sh (it builds and installs what this
needs); standard library only.

For each runtime and round: write the handler with a new token, take the time when the write
returns, then send GET requests one after another (each waits for its answer, then 5 ms pass)
until one answers with the token. The figure is that answer's time minus the write's.
Between rounds the tool is left alone for a second, so that each edit starts from rest.
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

PY = "def handler(event, context):\n    return {'statusCode': 200, 'body': '%s'}\n"
JS = "exports.handler = async (event) => ({ statusCode: 200, body: '%s' });\n"
RS = """use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

async fn handler(_event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({"statusCode": 200, "body": "%s"}))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url, timeout=30):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode()
    except Exception as e:  # 502 while a broken/absent version answers, refused, ...
        return "ERR %s" % e


def wait_text(path, needle, timeout, proc):
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = open(path, errors="replace").read() if os.path.exists(path) else ""
        if needle in text:
            return
        if proc.poll() is not None:
            sys.exit("bench-dev: the process exited early:\n" + text[-3000:])
        time.sleep(0.05)
    sys.exit("bench-dev: %r not seen within %ds:\n%s" % (needle, timeout, open(path).read()[-3000:]))


def edit_to_served(path, template, url, token, timeout):
    with open(path, "w") as f:
        f.write(template % token)
    t0 = time.perf_counter()
    deadline = t0 + timeout
    while time.perf_counter() < deadline:
        if get(url) == token:
            return time.perf_counter() - t0
        time.sleep(0.005)  # leave the CPU to the tool being measured
    sys.exit("bench-dev: %s never answered %r within %ds" % (url, token, timeout))


def measure(label, cases, rounds):
    """cases: [(runtime, file, template, url, timeout)] -> {runtime: [seconds]}"""
    out = {}
    for runtime, path, template, url, timeout, n in cases:
        n = n or rounds
        times = []
        for i in range(n):
            time.sleep(1.0)
            dt = edit_to_served(path, template, url, "%s-%s-%d" % (label, runtime, i), timeout)
            times.append(dt)
            print("  %-18s %-7s round %d: %7.1f ms" % (label, runtime, i + 1, dt * 1000), flush=True)
        out[runtime] = times
    return out


def skyform(args, work):
    proj = os.path.join(work, "sky")
    os.makedirs(os.path.join(proj, "functions/py"))
    os.makedirs(os.path.join(proj, "functions/js"))
    shutil.copytree(args.rust_fixture, os.path.join(proj, "functions/rs"),
                    ignore=shutil.ignore_patterns("target"))
    open(os.path.join(proj, "Skyform.toml"), "w").write('name = "bench"\nprogram = "cat manifest.json"\n')
    open(os.path.join(proj, "Skyform.dev.toml"), "w").write('provider = "local"\n')
    open(os.path.join(proj, "functions/py/app.py"), "w").write(PY % "start")
    open(os.path.join(proj, "functions/js/index.js"), "w").write(JS % "start")
    open(os.path.join(proj, "functions/rs/src/main.rs"), "w").write(RS % "start")
    route = lambda r, f: {"route": "GET /" + r, "function": {"$ref": f, "output": "function_name"}}
    manifest = {
        "manifest": 1, "project": "bench", "stack": "dev",
        "resources": [
            {"name": "py", "type": "local:Function",
             "inputs": {"code": "functions/py", "handler": "app.handler", "runtime": "python3"}},
            {"name": "js", "type": "local:Function",
             "inputs": {"code": "functions/js", "handler": "index.handler", "runtime": "nodejs"}},
            {"name": "rs", "type": "local:Function",
             "inputs": {"code": "functions/rs", "build": {"cargo_package": "rust-hello"}}},
            {"name": "api", "type": "local:HttpApi",
             "inputs": {"routes": [route("py", "py"), route("js", "js"), route("rs", "rs")]}},
        ],
        "outputs": {"url": {"$ref": "api", "output": "url"}},
    }
    import json
    open(os.path.join(proj, "manifest.json"), "w").write(json.dumps(manifest))
    log = os.path.join(work, "skyform-dev.log")
    env = dict(os.environ, CARGO_TARGET_DIR=args.rust_target)
    proc = subprocess.Popen([args.skyform, "dev", "--no-logs"], cwd=proj, env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_text(log, "watching 3 functions", 1800, proc)
        url = subprocess.check_output([args.skyform, "outputs", "url"], cwd=proj, env=env).decode().strip().strip('"')
        for r in ("py", "js", "rs"):
            assert get(url + "/" + r) == "start", (r, get(url + "/" + r))
        result = measure("skyform dev", [
            ("python", os.path.join(proj, "functions/py/app.py"), PY, url + "/py", 60, 0),
            ("node", os.path.join(proj, "functions/js/index.js"), JS, url + "/js", 60, 0),
            ("rust", os.path.join(proj, "functions/rs/src/main.rs"), RS, url + "/rs", 900, args.rust_rounds),
        ], args.rounds)
        # What `dev` itself reports per redeploy (edit seen -> new version deployed): the rest
        # of the figure is the debounce and the new version's cold start.
        import re
        names = {"py": "python", "js": "node", "rs": "rust"}
        result["_redeploy"] = {}
        for m in re.finditer(r"reloaded (\w+): new code served \((\d+) ms\)", open(log).read()):
            result["_redeploy"].setdefault(names.get(m.group(1), m.group(1)), []).append(int(m.group(2)) / 1000)
        return result
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        subprocess.run([args.skyform, "destroy", "--yes"], cwd=proj, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run([args.skyform, "local", "stop"], cwd=proj, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def serverless_offline(args, work):
    svc = os.path.join(work, "sls")
    os.makedirs(os.path.join(svc, "home"))
    os.symlink(os.path.join(args.sls_dir, "node_modules"), os.path.join(svc, "node_modules"))
    port, lambda_port = free_port(), free_port()
    open(os.path.join(svc, "serverless.yml"), "w").write(
        "service: devbench\nframeworkVersion: '3'\nprovider:\n  name: aws\n  runtime: nodejs20.x\n"
        "  region: us-east-1\nplugins:\n  - serverless-offline\ncustom:\n  serverless-offline:\n"
        "    host: 127.0.0.1\n    httpPort: %d\n    lambdaPort: %d\nfunctions:\n"
        "  py:\n    handler: app.handler\n    runtime: python3.12\n    events:\n      - httpApi:\n"
        "          method: GET\n          path: /py\n"
        "  js:\n    handler: index.handler\n    events:\n      - httpApi:\n"
        "          method: GET\n          path: /js\n" % (port, lambda_port))
    open(os.path.join(svc, "app.py"), "w").write(PY % "start")
    open(os.path.join(svc, "index.js"), "w").write(JS % "start")
    log = os.path.join(work, "sls.log")
    env = dict(os.environ, HOME=os.path.join(svc, "home"))
    proc = subprocess.Popen(["node", os.path.join(args.sls_dir, "node_modules/serverless/bin/serverless.js"),
                             "offline", "--reloadHandler"], cwd=svc, env=env, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    url = "http://127.0.0.1:%d" % port
    try:
        deadline = time.time() + 120
        while get(url + "/js", timeout=5) != "start":
            if time.time() > deadline or proc.poll() is not None:
                sys.exit("bench-dev: serverless-offline did not start:\n" + open(log).read()[-3000:])
            time.sleep(0.2)
        assert get(url + "/py") == "start", get(url + "/py")
        return measure("serverless-offline", [
            ("python", os.path.join(svc, "app.py"), PY, url + "/py", 60, 0),
            ("node", os.path.join(svc, "index.js"), JS, url + "/js", 60, 0),
        ], args.rounds)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--skyform", required=True)
    p.add_argument("--sls-dir", required=True)
    p.add_argument("--rust-fixture", required=True)
    p.add_argument("--rust-target", required=True, help="CARGO_TARGET_DIR for the Rust function")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--rust-rounds", type=int, default=3)
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="skyform-bench-dev-")
    try:
        sky = skyform(args, work)
        sls = serverless_offline(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nedit -> first request answered by the new code (median, min-max, ms)")
    print("%-8s %-28s %-28s %s" % ("runtime", "skyform dev", "serverless-offline --reloadHandler", "ratio"))
    fmt = lambda xs: "%.0f (%.0f-%.0f, n=%d)" % (statistics.median(xs) * 1000, min(xs) * 1000, max(xs) * 1000, len(xs))
    for r in ("python", "node", "rust"):
        a, b = sky.get(r), sls.get(r)
        ratio = "%.2fx" % (statistics.median(a) / statistics.median(b)) if a and b else "-"
        print("%-8s %-28s %-28s %s" % (r, fmt(a) if a else "-", fmt(b) if b else "(not supported)", ratio))
    print("\nof which `skyform dev` reported redeploying (edit seen -> new version deployed):")
    for r, xs in sorted(sky.get("_redeploy", {}).items()):
        print("%-8s %s" % (r, fmt(xs)))


if __name__ == "__main__":
    main()
