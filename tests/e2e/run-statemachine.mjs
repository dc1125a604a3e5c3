// Runs a state machine definition (infra/statemachine.asl.json, infra/registry-import.asl.json) with aws-local-stepfunctions, every Task invoking the real function binary through
// a local implementation of the Lambda Runtime API (the protocol `lambda_runtime` speaks in AWS): the binary polls
// `GET /2018-06-01/runtime/invocation/next`, answers `POST …/response` or `POST …/error`. Errors come back to the
// state machine with their `errorType` as the error name, as in AWS, so `Retry`/`Catch` match them.
//
// Usage: node --import ./polyfill.mjs run-statemachine.mjs CONFIG.json
// CONFIG: { definition, substitutions: {Name: value}, functions: {name: binaryPath}, env: {K: V},
//           functionEnv?: {name: {K: V}}, executionName?,
//           deadlineMs: {name: ms}, input, retryIntervalMs, waitMs, maxInstances, logFile, timeoutMs }
// Prints one JSON line: { status: "SUCCEEDED"|"FAILED", output?, error?, cause?, invocations: {name: n},
//                         maxPayload: {bytes, state} } (the largest state input or output),
//                         resources: {name: {peakRssKiB, busyMs, longestMs, environments, initMs}} } (per
//                         function: the largest peak RSS of its processes, read from /proc/PID/status VmHWM at the
//                         end of every invocation and when it stops; the time its invocations took; the longest
//                         init, from starting the process to its first poll for an invocation, as Lambda's Init
//                         Duration counts it).
//
// Direct invocations instead of an execution (a function outside the state machine, as a Function URL calls it):
// CONFIG: { functions, env, logFile, invoke: { function: name, payloads: [event, …] } }
// Prints one JSON line: { results: [{ ok: true, output } | { ok: false, error, cause }], invocations }, the payloads
// invoked one after another on the same warm environment.

import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { appendFileSync, readFileSync, writeSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { StateMachine } from 'aws-local-stepfunctions';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const log = (line) => config.logFile && appendFileSync(config.logFile, line.endsWith('\n') ? line : line + '\n');

// The definition with SAM's DefinitionSubstitutions applied.
function loadDefinition() {
  let text = readFileSync(config.definition, 'utf8');
  for (const [name, value] of Object.entries(config.substitutions)) {
    text = text.split('${' + name + '}').join(String(value));
  }
  return distributedMapsAsInline(JSON.parse(text));
}

// aws-local-stepfunctions runs no Distributed Map and no ItemReader. The documented equivalent that runs the same
// definition: each Map whose ItemReader lists S3 (arn:aws:states:::s3:listObjectsV2) gets a Task just before it that
// makes the same ListObjectsV2 call, with the reader's Parameters evaluated against the same input, and hands the
// objects ({Key, Size}, as the ItemReader yields them) to the Map as its items; the Map then runs INLINE with the same
// ItemSelector, ItemProcessor, MaxConcurrency and ResultPath. The reader Task's handler is listS3Objects below.
const ITEM_READER_FUNCTION = '__itemReader';
function distributedMapsAsInline(definition) {
  const rewrite = (machine) => {
    const states = machine.States;
    for (const [name, state] of Object.entries(states)) {
      const inner = state.ItemProcessor ?? state.Iterator;
      if (inner) rewrite(inner);
      for (const branch of state.Branches ?? []) rewrite(branch);
      if (state.Type !== 'Map' || !state.ItemReader) continue;
      if (state.ItemReader.Resource !== 'arn:aws:states:::s3:listObjectsV2') {
        throw new Error(`ItemReader ${state.ItemReader.Resource} (state ${name}) is not supported by this harness`);
      }
      const reader = `${name}ItemReader`;
      states[reader] = {
        Type: 'Task',
        Resource: `arn:aws:lambda:us-east-1:000000000000:function:${ITEM_READER_FUNCTION}`,
        Parameters: state.ItemReader.Parameters,
        ResultPath: '$.__itemReaderItems',
        Next: name,
      };
      for (const [other, o] of Object.entries(states)) {
        if (other !== reader && o.Next === name) o.Next = reader;
      }
      if (machine.StartAt === name) machine.StartAt = reader;
      for (const k of ['ItemReader', 'ItemBatcher', 'ResultWriter', 'ToleratedFailurePercentage', 'ToleratedFailureCount', 'Label']) {
        delete state[k];
      }
      state.ItemsPath = '$.__itemReaderItems';
      if (state.ItemProcessor) state.ItemProcessor.ProcessorConfig = { Mode: 'INLINE' };
    }
  };
  rewrite(definition);
  return definition;
}

// ListObjectsV2 against the S3 endpoint of the functions' environment (moto), every page.
async function listS3Objects({ Bucket, Prefix }) {
  const endpoint = config.env.AWS_ENDPOINT_URL_S3 ?? config.env.AWS_ENDPOINT_URL;
  const items = [];
  let token;
  const unescape = (t) => t.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&quot;', '"').replaceAll('&apos;', "'").replaceAll('&amp;', '&');
  do {
    const url = new URL(`${endpoint}/${Bucket}`);
    url.searchParams.set('list-type', '2');
    if (Prefix) url.searchParams.set('prefix', Prefix);
    if (token) url.searchParams.set('continuation-token', token);
    const res = await fetch(url);
    const xml = await res.text();
    if (!res.ok) throw new RuntimeError('S3.ListObjectsV2', `${res.status}: ${xml.slice(0, 200)}`);
    for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
      const key = /<Key>([\s\S]*?)<\/Key>/.exec(m[1]);
      const size = /<Size>(\d+)<\/Size>/.exec(m[1]);
      if (key) items.push({ Key: unescape(key[1]), Size: size ? Number(size[1]) : 0 });
    }
    token = /<IsTruncated>true<\/IsTruncated>/.test(xml) ? unescape(/<NextContinuationToken>([\s\S]*?)<\/NextContinuationToken>/.exec(xml)?.[1] ?? '') : undefined;
  } while (token);
  return items;
}

class RuntimeError extends Error {
  constructor(name, message) {
    super(message);
    this.name = name;
  }
}

// One execution environment: a process of the function's binary and its Runtime API endpoint.
class Instance {
  constructor(fn) {
    this.fn = fn;
    this.current = null; // the invocation being handled
    this.poll = null; // a parked GET /next
    this.server = createServer((req, res) => this.route(req, res));
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const port = this.server.address().port;
    const env = {
      ...process.env,
      ...config.env,
      // Each function's own environment on top (its own AWS credentials in the IAM-enforced test).
      ...(config.functionEnv?.[this.fn.name] ?? {}),
      AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${port}`,
      AWS_LAMBDA_FUNCTION_NAME: this.fn.name,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '1024',
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${this.fn.name}`,
      AWS_LAMBDA_LOG_STREAM_NAME: `local/${port}`,
    };
    this.spawnedAt = process.hrtime.bigint();
    this.proc = spawn(this.fn.binary, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const tag = `[${this.fn.name}:${port}] `;
    for (const stream of [this.proc.stdout, this.proc.stderr]) {
      let rest = '';
      stream.on('data', (chunk) => {
        const lines = (rest + chunk.toString()).split('\n');
        rest = lines.pop();
        for (const l of lines) log(tag + l);
      });
    }
    this.proc.on('exit', (code, signal) => {
      log(`${tag}exited code=${code} signal=${signal}`);
      this.dead = true;
      this.fn.instances = this.fn.instances.filter((i) => i !== this);
      if (this.current) {
        this.current.reject(new RuntimeError('Sandbox.Crash', `${this.fn.name} exited (${code ?? signal}) during an invocation`));
        this.current = null;
      }
      this.server.close();
    });
  }

  idle() {
    return !this.dead && this.current === null;
  }

  give(invocation) {
    this.current = invocation;
    if (this.poll) {
      const res = this.poll;
      this.poll = null;
      invocation.delivered = true;
      this.deliver(res);
    }
  }

  deliver(res) {
    const inv = this.current;
    inv.started = Date.now();
    res.writeHead(200, {
      'content-type': 'application/json',
      'lambda-runtime-aws-request-id': inv.id,
      'lambda-runtime-deadline-ms': String(inv.deadline),
      'lambda-runtime-invoked-function-arn': `arn:aws:lambda:us-east-1:000000000000:function:${this.fn.name}`,
      'lambda-runtime-trace-id': `Root=1-00000000-${inv.id.replaceAll('-', '').slice(0, 24)}`,
    });
    res.end(JSON.stringify(inv.payload));
  }

  route(req, res) {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const url = req.url;
      if (req.method === 'GET' && url.endsWith('/runtime/invocation/next')) {
        if (this.spawnedAt !== undefined) {
          const ms = Number(process.hrtime.bigint() - this.spawnedAt) / 1e6;
          this.fn.resources.initMs = Math.max(this.fn.resources.initMs, ms);
          this.spawnedAt = undefined;
        }
        if (this.current && !this.current.delivered) {
          this.current.delivered = true;
          this.deliver(res);
        } else {
          this.poll = res;
        }
        return;
      }
      const done = (ok) => {
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end('{"status":"OK"}');
        const inv = this.current;
        this.current = null;
        if (!inv) return;
        this.fn.account(this, Date.now() - inv.started);
        if (ok) {
          inv.resolve(body ? JSON.parse(body) : null);
        } else {
          let err = {};
          try {
            err = JSON.parse(body);
          } catch {
            err = { errorType: 'Lambda.Unknown', errorMessage: body };
          }
          inv.reject(new RuntimeError(err.errorType || 'Lambda.Unknown', err.errorMessage || ''));
        }
        this.fn.dispatch();
      };
      if (req.method === 'POST' && /\/runtime\/invocation\/[^/]+\/response$/.test(url)) return done(true);
      if (req.method === 'POST' && /\/runtime\/invocation\/[^/]+\/error$/.test(url)) return done(false);
      if (req.method === 'POST' && url.endsWith('/runtime/init/error')) {
        log(`[${this.fn.name}] init error: ${body}`);
        res.writeHead(202);
        res.end();
        return;
      }
      res.writeHead(404);
      res.end();
    });
  }
}

// A function: a queue of invocations served by up to maxInstances processes (Lambda scales out the same way).
class LocalFunction {
  constructor(name, binary) {
    this.name = name;
    this.binary = binary;
    this.instances = [];
    this.queue = [];
    this.count = 0;
    this.resources = { peakRssKiB: 0, busyMs: 0, longestMs: 0, environments: 0, initMs: 0 };
  }

  // The process's peak resident set so far (VmHWM only grows), or 0 where /proc is not there.
  peak(instance) {
    try {
      const status = readFileSync(`/proc/${instance.proc.pid}/status`, 'utf8');
      const kib = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
      this.resources.peakRssKiB = Math.max(this.resources.peakRssKiB, kib);
    } catch {
      // The process is gone: its last reading stands.
    }
  }

  account(instance, ms) {
    this.peak(instance);
    this.resources.busyMs += ms;
    this.resources.longestMs = Math.max(this.resources.longestMs, ms);
  }

  invoke(payload) {
    this.count++;
    const deadline = Date.now() + (config.deadlineMs?.[this.name] ?? 900_000);
    return new Promise((resolve, reject) => {
      this.queue.push({ id: randomUUID(), payload, deadline, resolve, reject, delivered: false });
      this.dispatch();
    });
  }

  async dispatch() {
    while (this.queue.length > 0) {
      const instance = this.instances.find((i) => i.idle() && i.started);
      if (instance) {
        instance.give(this.queue.shift());
        continue;
      }
      if (this.instances.length >= (config.maxInstances ?? 4)) return;
      // A new environment; while it starts, other dispatches may serve the queue, so look again afterwards.
      const fresh = new Instance(this);
      this.instances.push(fresh);
      this.resources.environments++;
      await fresh.start();
      fresh.started = true;
    }
  }

  stop() {
    for (const i of this.instances) {
      this.peak(i);
      i.proc.kill('SIGTERM');
    }
  }
}

const functions = Object.fromEntries(
  Object.entries(config.functions).map(([name, binary]) => [name, new LocalFunction(name, binary)]),
);

function finish(outcome) {
  outcome.invocations = Object.fromEntries(Object.values(functions).map((f) => [f.name, f.count]));
  for (const f of Object.values(functions)) f.stop();
  outcome.resources = Object.fromEntries(Object.values(functions).map((f) => [f.name, f.resources]));
  // Synchronously: process.exit would cut an asynchronous write to a pipe at 64-128 KiB.
  writeSync(1, JSON.stringify(outcome) + '\n');
  process.exit(0);
}

if (config.invoke) {
  const fn = functions[config.invoke.function];
  if (!fn) throw new Error(`no local binary for ${config.invoke.function}`);
  const results = [];
  for (const payload of config.invoke.payloads) {
    try {
      results.push({ ok: true, output: await fn.invoke(payload) });
    } catch (e) {
      results.push({ ok: false, error: e.name, cause: e.message });
    }
  }
  finish({ results });
}

const definition = loadDefinition();

// Every Task state (nested Map processors included) runs the function its Resource ARN names.
const handlers = {};
const retryIntervalOverrides = {};
// Wait states shortened (the FTC workflow polls every 2 minutes): `waitMs` for every Wait state.
const waitTimeOverrides = {};
function collect(states) {
  for (const [stateName, state] of Object.entries(states)) {
    if (state.Type === 'Task' && state.Resource.endsWith(`:${ITEM_READER_FUNCTION}`)) {
      handlers[stateName] = (input) => listS3Objects(input);
    } else if (state.Type === 'Task') {
      const fnName = state.Resource.split(':').pop();
      const fn = functions[fnName];
      if (!fn) throw new Error(`no local binary for ${state.Resource} (state ${stateName})`);
      handlers[stateName] = (input) => fn.invoke(input);
      if (config.retryIntervalMs !== undefined) retryIntervalOverrides[stateName] = config.retryIntervalMs;
    }
    if (state.Type === 'Wait' && config.waitMs !== undefined) waitTimeOverrides[stateName] = config.waitMs;
    const inner = state.ItemProcessor ?? state.Iterator;
    if (inner) collect(inner.States);
    for (const branch of state.Branches ?? []) collect(branch.States);
  }
}
collect(definition.States);

const machine = new StateMachine(definition);
// The context object's execution, as Step Functions fills it ($$.Execution.Id names the execution in leases).
const executionName = config.executionName ?? randomUUID();
const execution = machine.run(config.input, {
  overrides: { taskResourceLocalHandlers: handlers, retryIntervalOverrides, waitTimeOverrides },
  context: {
    Execution: {
      Id: `arn:aws:states:us-east-1:000000000000:execution:dncflow:${executionName}`,
      Name: executionName,
    },
  },
});
// The largest state input or output of the execution: Step Functions refuses a payload over 256 KB, and this
// harness would not, so it measures (outcome.maxPayload) for the tests to check.
let maxPayload = { bytes: 0, state: null };
const watching = (async () => {
  for await (const event of execution.eventLogs) {
    const state = event.state;
    if (!state) continue;
    for (const value of [state.input, state.output]) {
      if (value === undefined) continue;
      const bytes = Buffer.byteLength(JSON.stringify(value));
      if (bytes > maxPayload.bytes) maxPayload = { bytes, state: state.name };
    }
  }
})();
// A hung execution must fail the test, not hang it.
const timer = setTimeout(() => execution.abort(), config.timeoutMs ?? 300_000);
let outcome;
try {
  const output = await execution.result;
  outcome = { status: 'SUCCEEDED', output };
} catch (e) {
  // The library wraps the execution's error (a Fail state's Error/Cause) in an ExecutionError.
  const inner = e.cause ?? e;
  outcome = { status: 'FAILED', error: inner.name, cause: inner.message };
}
clearTimeout(timer);
await Promise.race([watching, new Promise((resolve) => setTimeout(resolve, 500))]);
outcome.maxPayload = maxPayload;
finish(outcome);
