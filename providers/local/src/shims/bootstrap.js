// skyform's Lambda Runtime API client for Node.js (a small stand-in for
// aws-lambda-ric). Loads _HANDLER ("file.function", file relative to LAMBDA_TASK_ROOT),
// then loops: GET next invocation -> call the handler -> POST its response or error.
// Handlers may be async (return a promise) or take a callback as third argument.
'use strict';
const http = require('http');
const path = require('path');
const fs = require('fs');
const url = require('url');

const [HOST, PORT] = (() => {
  const api = process.env.AWS_LAMBDA_RUNTIME_API;
  const i = api.lastIndexOf(':');
  return [api.slice(0, i), Number(api.slice(i + 1))];
})();
const BASE = '/2018-06-01/runtime';
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function request(method, p, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: HOST, port: PORT, method, path: BASE + p, agent, headers: headers || {} },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (body !== undefined) {
      req.setHeader('Content-Length', Buffer.byteLength(body));
      req.end(body);
    } else {
      req.end();
    }
  });
}

function errorBody(err) {
  if (!(err instanceof Error)) {
    return { errorType: 'Error', errorMessage: typeof err === 'string' ? err : JSON.stringify(err), trace: [] };
  }
  return {
    errorType: err.name || 'Error',
    errorMessage: err.message,
    trace: (err.stack || '').split('\n'),
  };
}

function postError(p, err) {
  const body = JSON.stringify(err);
  return request('POST', p, body, {
    'Content-Type': 'application/json',
    'Lambda-Runtime-Function-Error-Type': err.errorType,
  });
}

async function loadHandler() {
  const spec = process.env._HANDLER || '';
  const dot = spec.lastIndexOf('.');
  if (dot <= 0) throw Object.assign(new Error(`Bad handler ${spec}`), { name: 'Runtime.MalformedHandlerName' });
  const modPath = spec.slice(0, dot);
  const fnName = spec.slice(dot + 1);
  const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
  const base = path.resolve(root, modPath);
  let mod;
  try {
    const candidates = ['.js', '.cjs', '.mjs'].map((e) => base + e);
    const file = candidates.find((f) => fs.existsSync(f));
    if (!file) {
      throw Object.assign(new Error(`Cannot find module '${modPath}'`), { code: 'MODULE_NOT_FOUND' });
    }
    if (file.endsWith('.mjs')) {
      mod = await import(url.pathToFileURL(file).href);
    } else {
      try {
        mod = require(file);
      } catch (e) {
        // A `.js` file in a `"type": "module"` package is ES module code.
        if (e && e.code === 'ERR_REQUIRE_ESM') mod = await import(url.pathToFileURL(file).href);
        else throw e;
      }
    }
  } catch (e) {
    const err = errorBody(e);
    err.errorType = 'Runtime.ImportModuleError';
    err.errorMessage = `Error: ${e && e.message}`;
    throw Object.assign(new Error(err.errorMessage), { body: err });
  }
  const fn = mod[fnName] || (mod.default && mod.default[fnName]);
  if (typeof fn !== 'function') {
    const body = { errorType: 'Runtime.HandlerNotFound', errorMessage: `${spec} is undefined or not exported`, trace: [] };
    throw Object.assign(new Error(body.errorMessage), { body });
  }
  return fn;
}

function invoke(handler, event, context) {
  return new Promise((resolve, reject) => {
    let done = false;
    const callback = (err, result) => {
      if (done) return;
      done = true;
      if (err !== undefined && err !== null) reject(err);
      else resolve(result);
    };
    context.done = callback;
    context.succeed = (r) => callback(null, r);
    context.fail = (e) => callback(e);
    try {
      const r = handler(event, context, callback);
      if (r && typeof r.then === 'function') {
        r.then((v) => callback(null, v), (e) => callback(e === undefined ? new Error('undefined') : e));
      } else if (handler.length < 3) {
        // A plain function that takes no callback: its return value is the result.
        callback(null, r === undefined ? null : r);
      }
    } catch (e) {
      callback(e);
    }
  });
}

async function main() {
  let handler;
  try {
    handler = await loadHandler();
  } catch (e) {
    const body = e.body || errorBody(e);
    console.error(`${body.errorType}: ${body.errorMessage}`);
    await postError('/init/error', body);
    process.exit(1);
  }
  for (;;) {
    const next = await request('GET', '/invocation/next');
    const h = next.headers;
    const requestId = h['lambda-runtime-aws-request-id'];
    const deadline = Number(h['lambda-runtime-deadline-ms'] || 0);
    const context = {
      awsRequestId: requestId,
      invokedFunctionArn: h['lambda-runtime-invoked-function-arn'],
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
      memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    };
    if (h['lambda-runtime-trace-id']) process.env._X_AMZN_TRACE_ID = h['lambda-runtime-trace-id'];
    let result;
    try {
      const event = next.body.length ? JSON.parse(next.body.toString('utf8')) : null;
      result = await invoke(handler, event, context);
    } catch (e) {
      const body = errorBody(e);
      console.error(`${requestId}\tERROR\tInvoke Error\t${JSON.stringify(body)}`);
      await postError(`/invocation/${requestId}/error`, body);
      continue;
    }
    const out = result === undefined ? 'null' : JSON.stringify(result);
    await request('POST', `/invocation/${requestId}/response`, out, { 'Content-Type': 'application/json' });
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
