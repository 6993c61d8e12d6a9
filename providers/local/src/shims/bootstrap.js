// skyform's Lambda Runtime API client for Node.js (a small stand-in for
// aws-lambda-ric). Loads _HANDLER ("file.function", file relative to LAMBDA_TASK_ROOT),
// then loops: GET next invocation -> call the handler -> POST its response or error.
// Handlers may be async (return a promise) or take a callback as third argument.
'use strict';
const net = require('net');
const path = require('path');
const fs = require('fs');
const url = require('url');

const [HOST, PORT] = (() => {
  const api = process.env.AWS_LAMBDA_RUNTIME_API;
  const i = api.lastIndexOf(':');
  return [api.slice(0, i), Number(api.slice(i + 1))];
})();
const BASE = '/2018-06-01/runtime';

// Isolation, as on Lambda: modules resolve from the function's own folder (its node_modules)
// only, never from the folders above the artifact or the user's global folders.
const TASK_ROOT = fs.realpathSync(process.env.LAMBDA_TASK_ROOT || process.cwd());
{
  const Module = require('module');
  const within = (p) => p === TASK_ROOT || p.startsWith(TASK_ROOT + path.sep);
  const nodeModulePaths = Module._nodeModulePaths;
  Module._nodeModulePaths = (from) => nodeModulePaths(from).filter(within);
  Module.globalPaths.length = 0;
}

// Errors name the user's files: a file of the artifact that is also in the function's folder
// in the project (SKYFORM_SOURCE_DIR) is shown under the latter.
const SOURCE = process.env.SKYFORM_SOURCE_DIR;
function userPaths(text) {
  if (!SOURCE || !text) return text;
  return String(text).split(TASK_ROOT + path.sep).reduce((acc, part, i) => {
    if (i === 0) return part;
    const m = /^[^\s:)'"]+/.exec(part);
    const rel = m ? m[0] : '';
    const mapped = path.join(SOURCE, rel);
    const prefix = rel && fs.existsSync(mapped) ? mapped : path.join(TASK_ROOT, rel);
    return acc + prefix + part.slice(rel.length);
  }, '');
}
// The Runtime API client: one persistent TCP connection (TCP_NODELAY), each request written
// with one write, responses parsed by hand. Node's `http` client (even with a keep-alive
// agent) cost about twice the CPU per invocation, and the function process is the busiest
// process of a warm invocation. The server is skyform's own Runtime API, which always
// answers with a Content-Length; `Transfer-Encoding: chunked` is handled anyway.
let conn = null;

function connect() {
  const sock = net.connect({ host: HOST, port: PORT });
  sock.setNoDelay(true);
  const c = { sock, buf: Buffer.alloc(0), waiter: null, dead: null };
  sock.on('data', (d) => {
    c.buf = c.buf.length ? Buffer.concat([c.buf, d]) : d;
    if (c.waiter) c.waiter();
  });
  const fail = (e) => {
    c.dead = e || new Error('Runtime API connection closed');
    if (conn === c) conn = null;
    if (c.waiter) c.waiter();
  };
  sock.on('error', fail);
  sock.on('close', () => fail());
  return c;
}

// Parses one response from c.buf; returns null until it is complete.
function parse(c) {
  const end = c.buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = c.buf.toString('latin1', 0, end).split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const headers = {};
  for (let i = 1; i < lines.length; i++) {
    const k = lines[i].indexOf(':');
    if (k > 0) headers[lines[i].slice(0, k).trim().toLowerCase()] = lines[i].slice(k + 1).trim();
  }
  let pos = end + 4;
  let body;
  if ((headers['transfer-encoding'] || '').toLowerCase().includes('chunked')) {
    const parts = [];
    for (;;) {
      const nl = c.buf.indexOf('\r\n', pos);
      if (nl < 0) return null;
      const size = parseInt(c.buf.toString('latin1', pos, nl), 16);
      if (c.buf.length < nl + 2 + size + 2) return null;
      if (size === 0) { pos = nl + 4; break; }
      parts.push(c.buf.subarray(nl + 2, nl + 2 + size));
      pos = nl + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else {
    const len = Number(headers['content-length'] || 0);
    if (c.buf.length < pos + len) return null;
    body = Buffer.from(c.buf.subarray(pos, pos + len));
    pos += len;
  }
  c.buf = c.buf.subarray(pos);
  return { status, headers, body };
}

// Writes `data` (one or more requests) and resolves with the next `n` responses.
function exchange(c, data, n) {
  return new Promise((resolve, reject) => {
    const got = [];
    c.waiter = () => {
      try {
        for (let r = parse(c); r; r = got.length < n ? parse(c) : null) got.push(r);
      } catch (e) {
        c.waiter = null;
        reject(e);
        return;
      }
      if (got.length === n) {
        c.waiter = null;
        resolve(got);
      } else if (c.dead) {
        c.waiter = null;
        reject(c.dead);
      }
    };
    c.sock.write(data);
  });
}

function encode(method, p, body, headers) {
  let head = `${method} ${BASE}${p} HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\n`;
  for (const [k, v] of Object.entries(headers || {})) head += `${k}: ${v}\r\n`;
  if (body === undefined) return Buffer.from(head + '\r\n', 'latin1');
  const buf = Buffer.from(body, 'utf8');
  head += `Content-Length: ${buf.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), buf]);
}

// Sends the requests in one write (HTTP/1.1 pipelining) and resolves with the last response.
async function send(reqs) {
  const data = reqs.length === 1 ? reqs[0] : Buffer.concat(reqs);
  for (let attempt = 0; ; attempt++) {
    if (!conn || conn.dead) conn = connect();
    try {
      const got = await exchange(conn, data, reqs.length);
      return got[got.length - 1];
    } catch (e) {
      // A connection the server closed while idle: reconnect once.
      if (conn) conn.sock.destroy();
      conn = null;
      if (attempt) throw e;
    }
  }
}

const NEXT = encode('GET', '/invocation/next');

function errorBody(err) {
  if (!(err instanceof Error)) {
    return { errorType: 'Error', errorMessage: typeof err === 'string' ? err : JSON.stringify(err), trace: [] };
  }
  return {
    errorType: err.name || 'Error',
    errorMessage: userPaths(err.message),
    trace: userPaths(err.stack || '').split('\n'),
  };
}

function errorRequest(p, err) {
  return encode('POST', p, JSON.stringify(err), {
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
    if (e instanceof SyntaxError) {
      // The file and line are only in the stack's first line ("/path/app.js:3").
      const where = userPaths(String(e.stack || '').split('\n')[0]);
      err.errorType = 'Runtime.UserCodeSyntaxError';
      err.errorMessage = `SyntaxError: ${e.message} (${where})`;
    } else {
      err.errorType = 'Runtime.ImportModuleError';
      err.errorMessage = `Error: ${userPaths(e && e.message)}`;
    }
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
    if (body.trace && body.trace.length) console.error(body.trace.join('\n'));
    await send([errorRequest('/init/error', body)]);
    process.exit(1);
  }
  // The answer to one invocation and the poll for the next go out in one write; the 202 and
  // the next event then come back on the same connection. A runtime client that waits for
  // the 202 first (as the official ones do) works the same; this saves a wake-up per request.
  let next = await send([NEXT]);
  for (;;) {
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
      next = await send([errorRequest(`/invocation/${requestId}/error`, body), NEXT]);
      continue;
    }
    const out = result === undefined ? 'null' : JSON.stringify(result);
    const post = encode('POST', `/invocation/${requestId}/response`, out, { 'Content-Type': 'application/json' });
    next = await send([post, NEXT]);
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
