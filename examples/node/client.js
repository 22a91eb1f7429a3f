#!/usr/bin/env node
// Submit a MediaInfo job through ci-gateway, wait for it, print its JobsDetail as JSON.
//
// Only the .proto files are needed: @grpc/proto-loader reads protos/ci/media/v1/service.proto
// at run time, so there is no generated code to keep in step. Field names stay as in the proto
// (`keepCase`), enums print as their names (`JOB_STATE_SUCCESS`).
//
//   node client.js --address 127.0.0.1:50051 --object input/demo.mp4
//
// Exit code: 0 when the job succeeded, 1 when it failed or was cancelled, 2 on any other error.
'use strict';

const path = require('node:path');
const crypto = require('node:crypto');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'protos');
const TERMINAL = new Set(['JOB_STATE_SUCCESS', 'JOB_STATE_FAILED', 'JOB_STATE_CANCEL']);
const CALL_TIMEOUT_S = 10;

function loadService() {
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

// One unary call; resolves with the reply and the trailing metadata (request ids).
function unary(client, method, request, requestId) {
  const metadata = new grpc.Metadata();
  metadata.set('x-request-id', requestId);
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

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const { values } = parseArgs({
    options: {
      address: { type: 'string', default: '127.0.0.1:50051' },
      object: { type: 'string' },
      bucket: { type: 'string', default: '' },
      region: { type: 'string', default: '' },
      'timeout-s': { type: 'string', default: '60' },
    },
  });
  if (!values.object) {
    throw new Error('--object is required (the object key of the video in the bucket)');
  }
  const timeoutMs = Number(values['timeout-s']) * 1000;
  const MediaJobService = loadService();
  const client = new MediaJobService(values.address, grpc.credentials.createInsecure());
  const target = { bucket: values.bucket, region: values.region };
  const requestId = `node-${crypto.randomUUID()}`;
  try {
    const submitted = await unary(
      client,
      'SubmitMediaJob',
      { ...target, request: { tag: 'MediaInfo', input: { object: values.object } } },
      requestId,
    );
    const jobId = submitted.reply.jobs_detail.job_id;
    console.error(
      `submitted ${jobId}: x-request-id=${submitted.trailers.get('x-request-id')} ` +
        `x-ci-request-id=${submitted.trailers.get('x-ci-request-id')}`,
    );

    // Bounded polling: at most timeout-s in all, backing off from 100 ms to 1 s.
    const giveUpAt = Date.now() + timeoutMs;
    let delayMs = 100;
    for (;;) {
      const described = await unary(
        client,
        'DescribeMediaJobs',
        { ...target, job_ids: [jobId] },
        requestId,
      );
      const job = described.reply.jobs_detail[0];
      if (TERMINAL.has(job.state)) {
        process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
        return job.state === 'JOB_STATE_SUCCESS' ? 0 : 1;
      }
      if (Date.now() + delayMs > giveUpAt) {
        throw new Error(`job ${jobId} did not finish within ${values['timeout-s']} s`);
      }
      await sleep(delayMs);
      delayMs = Math.min(delayMs * 2, 1000);
    }
  } finally {
    client.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    const status = error.code !== undefined ? ` (gRPC status ${error.code})` : '';
    console.error(`error${status}: ${error.details || error.message}`);
    process.exit(2);
  },
);
