#!/usr/bin/env node
// Submit a MediaInfo job through ci-gateway, follow it to its end, print its JobsDetail as JSON.
//
// Only the .proto files are needed: @grpc/proto-loader reads protos/ci/media/v1/service.proto
// at run time, so there is no generated code to keep in step. Field names stay as in the proto
// (`keepCase`), enums print as their names (`JOB_STATE_SUCCESS`).
//
// The job is followed on the WatchMediaJob server stream (one message per change, the stream
// ends with the job); `--poll` polls DescribeMediaJobs instead, for a path that does not carry
// long-lived streams. A watch that ends UNAVAILABLE (the gateway drains for a rolling update, a
// connection resets or reaches its maximum age) is opened again after a backoff, a bounded
// number of times (`--watch-attempts`): a new watch of the same job starts with its current
// state, so nothing is lost.
//
// On a gRPC error it prints the code and message, then the gateway's rich status decoded from
// the `grpc-status-details-bin` trailer (status_details.js): ErrorInfo (reason, and CI's Code,
// Message and RequestId as metadata), RequestInfo, BadRequest's field violations, RetryInfo.
//
//   npm ci --prefix examples/node      # once: the gRPC packages and google-proto-files
//   node client.js --address 127.0.0.1:50051 --object input/demo.mp4
//   CI_GATEWAY_TOKEN=... node client.js --address gw:50051 --ca-file ca.crt --object input/demo.mp4
//   node client.js --help
//
// A shared gateway (README "Credentials and client access") wants a bearer token, taken from
// CI_GATEWAY_TOKEN or the file in --token-file / CI_GATEWAY_TOKEN_FILE (never a flag value:
// argv shows in ps), and usually TLS: --ca-file (CI_GATEWAY_CA_FILE) names the CA its
// certificate chains to, as for `ci-gateway jobs`.
//
// Exit code: 0 when the job succeeded, 1 when it failed or was cancelled, 2 on any other error.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { parseArgs } = require('node:util');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'protos');
const TERMINAL = new Set(['JOB_STATE_SUCCESS', 'JOB_STATE_FAILED', 'JOB_STATE_CANCEL']);
const CALL_TIMEOUT_S = 10;
// Waits between two watches of a job (with --poll, two describes that failed), when the gateway
// gives no RetryInfo: exponential, 250 ms doubling up to 5 s, each +-20% at random so that the
// clients of a drained gateway do not all come back at once.
const REWATCH_BACKOFF = { initialMs: 250, multiplier: 2, maxMs: 5000, jitter: 0.2 };
const OPTIONS = {
  address: { type: 'string', default: '127.0.0.1:50051' },
  object: { type: 'string' },
  bucket: { type: 'string', default: '' },
  region: { type: 'string', default: '' },
  'timeout-s': { type: 'string', default: '60' },
  poll: { type: 'boolean', default: false },
  'watch-attempts': { type: 'string', default: '10' },
  'token-file': { type: 'string', default: process.env.CI_GATEWAY_TOKEN_FILE || '' },
  'ca-file': { type: 'string', default: process.env.CI_GATEWAY_CA_FILE || '' },
  'tls-server-name': { type: 'string', default: process.env.CI_GATEWAY_TLS_SERVER_NAME || '' },
  help: { type: 'boolean', short: 'h', default: false },
};
const USAGE = `Usage: node client.js --object KEY [--address HOST:PORT] [--bucket NAME-APPID]
                      [--region REGION] [--timeout-s SECONDS] [--poll] [--watch-attempts N]
                      [--token-file FILE] [--ca-file FILE] [--tls-server-name NAME]

Submit a MediaInfo job through ci-gateway, follow it to its end (the WatchMediaJob stream, one
'watch: STATE PROGRESS' line on stderr per change) and print its JobsDetail as JSON. Only the
.proto files in protos/ are needed.

Options:
  --object KEY          object key of the video in the bucket (required), e.g. input/demo.mp4
  --address HOST:PORT   the gateway (default 127.0.0.1:50051)
  --bucket NAME-APPID   bucket (default: the gateway's)
  --region REGION       region, e.g. ap-guangzhou (default: the gateway's)
  --timeout-s SECONDS   longest wait for the job (default 60)
  --poll                poll DescribeMediaJobs (100 ms backing off to 1 s) instead of watching
  --watch-attempts N    watch the job at most N times in all (default 10): a watch that ends
                        UNAVAILABLE, or RESOURCE_EXHAUSTED with a RetryInfo, is opened again
                        after a backoff (RetryInfo's delay when given; one 'rewatch:' line on
                        stderr each time), within --timeout-s; with --poll, a describe that
                        fails so is sent again likewise ('repoll:'), N - 1 times at most
  --token-file FILE     a shared gateway's bearer token, sent as 'authorization: Bearer ...'
                        (or CI_GATEWAY_TOKEN_FILE; the token itself: CI_GATEWAY_TOKEN)
  --ca-file FILE        TLS, trusting the CA in FILE (or CI_GATEWAY_CA_FILE)
  --tls-server-name NAME  the name in the gateway's certificate, when the address is not it
  -h, --help            show this help and exit

On a gRPC error, stderr has 'error CODE (gRPC status N): MESSAGE', then one indented line per
detail of the rich status (grpc-status-details-bin), values bare or as JSON strings:
  ErrorInfo reason=REASON domain=ci-gateway
  ErrorInfo.metadata KEY=VALUE          (ci_code, ci_message, ci_request_id, attempts, ...)
  RequestInfo request_id=ID serving_data=CI      (CI's RequestId, for Tencent support)
  BadRequest.field_violation field=PATH description=TEXT
  RetryInfo retry_delay=SECONDSs

Exit code: 0 the job succeeded, 1 it failed or was cancelled, 2 any other error.
Dependencies (once, from the repository root): npm ci --prefix examples/node
`;

// Required only when a call is made, so --help works before the packages are installed.
function grpcLibraries() {
  try {
    return { grpc: require('@grpc/grpc-js'), protoLoader: require('@grpc/proto-loader') };
  } catch (error) {
    if (error.code === 'MODULE_NOT_FOUND') {
      throw new Error('the gRPC packages are missing: run `npm ci --prefix examples/node`');
    }
    throw error;
  }
}

function loadService(grpc, protoLoader) {
  const definition = protoLoader.loadSync('ci/media/v1/service.proto', {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    enums: String,
    longs: String,
    defaults: false,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).ci.media.v1.MediaJobService;
}

// What every call sends: our request id (the gateway logs it) and the bearer token, if any.
function callMetadata(grpc, requestId, token) {
  const metadata = new grpc.Metadata();
  metadata.set('x-request-id', requestId);
  if (token) {
    metadata.set('authorization', `Bearer ${token}`);
  }
  return metadata;
}

// One unary call; resolves with the reply and the trailing metadata (request ids).
function unary(grpc, client, method, request, requestId, token) {
  const metadata = callMetadata(grpc, requestId, token);
  const deadline = new Date(Date.now() + CALL_TIMEOUT_S * 1000);
  return new Promise((resolve, reject) => {
    let reply;
    let failure;
    const call = client[method](request, metadata, { deadline }, (error, response) => {
      failure = error;
      reply = response;
    });
    // 'status' comes after the callback, with the trailing metadata of success and failure.
    call.on('status', (status) => {
      if (failure) {
        reject(failure);
      } else {
        resolve({ reply, trailers: status.metadata });
      }
    });
  });
}

// Follows one job on the WatchMediaJob server stream: its JobsDetail at once, then one per
// change of state or progress; the gateway ends the stream after a final state. `giveUpAt` (a
// Date.now() value) is the stream's deadline, so the wait needs no loop; resolves with the last
// JobsDetail, also when that deadline ran out before the job ended.
function watch(grpc, client, request, requestId, token, giveUpAt) {
  return new Promise((resolve, reject) => {
    let job;
    let failure;
    const metadata = callMetadata(grpc, requestId, token);
    const call = client.WatchMediaJob(request, metadata, { deadline: new Date(giveUpAt) });
    call.on('data', (message) => {
      job = message.jobs_detail;
      console.error(`watch: ${job.state} ${job.progress || '-'}`);
    });
    call.on('error', (error) => {
      // A non-OK status ('status' follows); running out of time is not a failure of the call.
      failure = error.code === grpc.status.DEADLINE_EXCEEDED ? undefined : error;
    });
    call.on('status', () => (failure ? reject(failure) : resolve(job)));
  });
}

// How long to wait before trying again (a watch, a describe) after the `attempt`th try failed,
// or undefined when trying again cannot help. UNAVAILABLE: the gateway is draining
// (SHUTTING_DOWN), the connection broke or the gateway is not there (yet), or CI did not answer.
// RESOURCE_EXHAUSTED with a RetryInfo: the gateway sheds load or the client is over its watcher
// cap, and says when to come back (without one, it is a gRPC limit such as the message size).
// Anything else (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, UNAUTHENTICATED, ...) would
// fail again.
function nextDelayMs(grpc, code, { retryDelayMs }, attempt) {
  const retryable =
    code === grpc.status.UNAVAILABLE ||
    (code === grpc.status.RESOURCE_EXHAUSTED && retryDelayMs !== undefined);
  if (!retryable) {
    return undefined;
  }
  if (retryDelayMs !== undefined) {
    return retryDelayMs; // the gateway knows when it will have room
  }
  const { initialMs, multiplier, maxMs, jitter } = REWATCH_BACKOFF;
  const backoffMs = Math.min(maxMs, initialMs * multiplier ** (attempt - 1));
  return backoffMs * (1 + jitter * (2 * Math.random() - 1));
}

// After the `attempt`th failed try (of `attempts` in all, none starting after `giveUpAt`): how
// long to wait before the next, said on stderr as `label: CODE (REASON), <doing> again in N ms
// (attempt n of m)`; or `error` thrown again when another try cannot help or none is left.
function nextTry(grpc, error, { attempt, attempts, giveUpAt, label, doing }) {
  const { retryHints } = require('./status_details');
  const hints = retryHints(error);
  const delayMs = nextDelayMs(grpc, error.code, hints, attempt);
  if (delayMs === undefined || attempt >= attempts || Date.now() + delayMs >= giveUpAt) {
    throw error;
  }
  console.error(
    `${label}: ${grpc.status[error.code]}${hints.reason ? ` (${hints.reason})` : ''}, ` +
      `${doing} again in ${Math.round(delayMs)} ms (attempt ${attempt + 1} of ${attempts})`,
  );
  return delayMs;
}

// Watches the job until it ends, watching again when a watch fails in a way that calls for it
// (nextDelayMs): at most `attempts` watches in all, none starting after `giveUpAt`. Resolves
// as `watch` does; rejects with the last failure when no attempt or no time is left.
async function watchAcrossRestarts(grpc, client, request, requestId, token, giveUpAt, attempts) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await watch(grpc, client, request, requestId, token, giveUpAt);
    } catch (error) {
      const retry = { attempt, attempts, giveUpAt, label: 'rewatch', doing: 'watching' };
      await sleep(nextTry(grpc, error, retry));
    }
  }
}

// Bounded polling of DescribeMediaJobs: at most until giveUpAt, backing off from 100 ms to 1 s.
// A describe that fails as a watch may be retried (nextDelayMs: the gateway draining, a
// connection lost, load shed) is sent again after the same backoff, at most `attempts - 1`
// times in all; any other failure ends the polling at once.
async function poll(grpc, client, request, requestId, token, giveUpAt, attempts) {
  let delayMs = 100;
  let failures = 0;
  for (;;) {
    let described;
    try {
      described = await unary(grpc, client, 'DescribeMediaJobs', request, requestId, token);
    } catch (error) {
      failures += 1;
      const retry = { attempt: failures, attempts, giveUpAt, label: 'repoll', doing: 'describing' };
      await sleep(nextTry(grpc, error, retry));
      continue;
    }
    const job = described.reply.jobs_detail[0];
    if (TERMINAL.has(job.state) || Date.now() + delayMs > giveUpAt) {
      return job;
    }
    await sleep(delayMs);
    delayMs = Math.min(delayMs * 2, 1000);
  }
}

function readFile(file, what) {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    throw new Error(`cannot read ${what} ${file}: ${error.code || error.message}`);
  }
}

// The token's file or variable; never printed. Surrounding whitespace (a trailing newline) is
// not part of it.
function bearerToken(tokenFile) {
  const token = tokenFile
    ? readFile(tokenFile, '--token-file').toString('utf8')
    : process.env.CI_GATEWAY_TOKEN || '';
  return token.trim();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const { values } = parseArgs({ options: OPTIONS });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values.object) {
    throw new Error('--object is required (the object key of the video in the bucket; see --help)');
  }
  const timeoutMs = Number(values['timeout-s']) * 1000;
  const watchAttempts = Number(values['watch-attempts']);
  if (!Number.isInteger(watchAttempts) || watchAttempts < 1) {
    throw new Error(`--watch-attempts must be 1 or more, not ${values['watch-attempts']}`);
  }
  const token = bearerToken(values['token-file']);
  const { grpc, protoLoader } = grpcLibraries();
  const MediaJobService = loadService(grpc, protoLoader);
  // After a lost connection the channel reconnects by itself, backing off up to 120 s by
  // default (and a call meanwhile fails at once): here no longer than between two watches, so a
  // gateway back on its port is found by the next watch rather than minutes later.
  const options = {
    'grpc.initial_reconnect_backoff_ms': REWATCH_BACKOFF.initialMs,
    'grpc.max_reconnect_backoff_ms': REWATCH_BACKOFF.maxMs,
  };
  if (values['tls-server-name']) {
    options['grpc.ssl_target_name_override'] = values['tls-server-name'];
  }
  const channelCredentials = values['ca-file']
    ? grpc.credentials.createSsl(readFile(values['ca-file'], '--ca-file'))
    : grpc.credentials.createInsecure();
  const client = new MediaJobService(values.address, channelCredentials, options);
  const target = { bucket: values.bucket, region: values.region };
  const requestId = `node-${crypto.randomUUID()}`;
  try {
    const submitted = await unary(
      grpc,
      client,
      'SubmitMediaJob',
      { ...target, request: { tag: 'MediaInfo', input: { object: values.object } } },
      requestId,
      token,
    );
    const jobId = submitted.reply.jobs_detail.job_id;
    console.error(
      `submitted ${jobId}: x-request-id=${submitted.trailers.get('x-request-id')} ` +
        `x-ci-request-id=${submitted.trailers.get('x-ci-request-id')}`,
    );

    const giveUpAt = Date.now() + timeoutMs;
    const job = values.poll
      ? await poll(
          grpc,
          client,
          { ...target, job_ids: [jobId] },
          requestId,
          token,
          giveUpAt,
          watchAttempts,
        )
      : await watchAcrossRestarts(
          grpc,
          client,
          { ...target, job_id: jobId },
          requestId,
          token,
          giveUpAt,
          watchAttempts,
        );
    if (!job || !TERMINAL.has(job.state)) {
      throw new Error(`job ${jobId} did not finish within ${values['timeout-s']} s`);
    }
    process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
    return job.state === 'JOB_STATE_SUCCESS' ? 0 : 1;
  } finally {
    client.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    // gRPC errors carry a numeric status code (and maybe a rich status); Node's own (e.g.
    // parseArgs') a string one.
    if (typeof error.code === 'number') {
      console.error(require('./status_details').errorLines(error).join('\n'));
    } else {
      console.error(`error: ${error.message}`);
    }
    process.exit(2);
  },
);
