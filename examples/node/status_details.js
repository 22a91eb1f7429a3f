// Reads a gRPC error's rich status: the google.rpc.Status a server puts, serialised, in the
// `grpc-status-details-bin` trailer, with typed details beside the code and message (gRPC's
// "richer error model"). @grpc/grpc-js leaves that trailer in `error.metadata` undecoded.
//
// The google.rpc messages come from Google's own .proto files, as the `google-proto-files`
// package ships them (status.proto, error_details.proto): no hand-written copies to drift. Each
// detail is a google.protobuf.Any whose type URL (`type.googleapis.com/google.rpc.ErrorInfo`)
// names the message to decode its bytes as.
//
// `errorLines(error)` gives the lines client.js prints on a gRPC error, a stable form meant to
// be read by people and by scripts alike:
//
//   error NOT_FOUND (gRPC status 5): CI error NoSuchBucket: ... (RequestId NjQ...)
//     ErrorInfo reason=UPSTREAM_NOT_FOUND domain=ci-gateway
//     ErrorInfo.metadata ci_code=NoSuchBucket
//     ErrorInfo.metadata ci_message="The specified bucket does not exist."
//     RequestInfo request_id=NjQ... serving_data=CI
//     BadRequest.field_violation field=bucket description="must be 'name-APPID' (...)"
//     RetryInfo retry_delay=1.5s
//
// The first line is the status code and message (control characters escaped as in JSON), then
// one line per detail, per ErrorInfo metadata entry (sorted by key) and per field violation,
// in the order the server sent the details. A value prints bare when it is a plain word
// (letters, digits and `_ . - / : [ ]`), else as a JSON string, so a line never breaks. Other
// google.rpc types print as `<Type> <JSON>`; a type this file cannot decode as
// `detail <type URL> (N bytes, not decoded)`.
//
// `retryHints(error)` gives what deciding whether, and when, to call again needs: ErrorInfo's
// reason (`SHUTTING_DOWN`: watch again) and RetryInfo's delay (how long the server asks to wait).
'use strict';

const { status: CODE_NAMES } = require('@grpc/grpc-js'); // 5 -> 'NOT_FOUND'

const STATUS_DETAILS_KEY = 'grpc-status-details-bin';
const TYPE_URL_PREFIX = 'type.googleapis.com/';
const PLAIN_WORD = /^[\w.\-/:[\]]+$/;

// Bare when a plain word, else a JSON string (quoted, escaped: newlines cannot split a line).
const show = (value) => (PLAIN_WORD.test(String(value)) ? String(value) : JSON.stringify(value));

// google.protobuf.Duration as its JSON form: seconds with a fraction, e.g. `1.5s`.
const duration = ({ seconds = '0', nanos = 0 } = {}) => `${Number(seconds) + nanos / 1e9}s`;

// How each detail type the gateway sends prints (see README "Errors"); lines without indent.
const FORMATS = {
  'google.rpc.ErrorInfo': (info) => [
    `ErrorInfo reason=${show(info.reason)} domain=${show(info.domain)}`,
    ...Object.keys(info.metadata)
      .sort()
      .map((key) => `ErrorInfo.metadata ${show(key)}=${show(info.metadata[key])}`),
  ],
  'google.rpc.BadRequest': (bad) =>
    bad.field_violations.map(
      (v) => `BadRequest.field_violation field=${show(v.field)} description=${show(v.description)}`,
    ),
  'google.rpc.RequestInfo': (info) => [
    `RequestInfo request_id=${show(info.request_id)} serving_data=${show(info.serving_data)}`,
  ],
  'google.rpc.RetryInfo': (info) => [`RetryInfo retry_delay=${duration(info.retry_delay)}`],
};

let root; // the google.rpc types, loaded on the first error that has details
function googleRpcTypes() {
  if (!root) {
    const protoFiles = require('google-proto-files');
    const files = ['status.proto', 'error_details.proto'].map((file) =>
      protoFiles.getProtoPath('rpc', file),
    );
    // keepCase: field names as in the .proto (`field_violations`, `request_id`).
    root = protoFiles.loadSync(files, { keepCase: true });
  }
  return root;
}

// One Any as { name, message }: its google.rpc type and the decoded message (field names as in
// the .proto, every field present), or `message: null` and the Any itself (`any`, for
// detailLines to describe) when this file cannot decode it.
function decodeAny(types, any) {
  const name = any.type_url.startsWith(TYPE_URL_PREFIX)
    ? any.type_url.slice(TYPE_URL_PREFIX.length)
    : '';
  const type = name.startsWith('google.rpc.') ? types.lookup(name) : null;
  if (!type || typeof type.decode !== 'function') {
    return { name, message: null, any };
  }
  const message = type.toObject(type.decode(any.value), { defaults: true, longs: String });
  return { name, message };
}

// Every detail of a gRPC error's rich status, decoded; [] when the server sent none. Throws
// when the trailer is corrupt or google-proto-files is missing.
function statusDetails(error) {
  const [bytes] = error.metadata ? error.metadata.get(STATUS_DETAILS_KEY) : [];
  if (!bytes) {
    return [];
  }
  const types = googleRpcTypes();
  const status = types.lookupType('google.rpc.Status').decode(bytes);
  return status.details.map((any) => decodeAny(types, any));
}

// One detail, in the lines above.
function detailLines({ name, message, any }) {
  if (!message) {
    return [`detail ${show(any.type_url)} (${any.value.length} bytes, not decoded)`];
  }
  const format = FORMATS[name];
  const shortName = name.slice('google.rpc.'.length);
  return format ? format(message) : [`${shortName} ${JSON.stringify(message)}`];
}

// Every detail line of a gRPC error (ServiceError), [] when the server sent no rich status.
function statusDetailLines(error) {
  try {
    return statusDetails(error).flatMap(detailLines);
  } catch (failure) {
    // A missing package or a corrupt trailer: the code and message still say what failed.
    const why =
      failure.code === 'MODULE_NOT_FOUND'
        ? 'google-proto-files is missing: run `npm ci --prefix examples/node`'
        : failure.message.split('\n')[0];
    return [`(${STATUS_DETAILS_KEY} not decoded: ${why})`];
  }
}

// What a caller deciding whether (and when) to call again reads: ErrorInfo's reason (e.g.
// SHUTTING_DOWN) and RetryInfo's delay in ms, each undefined when the status has none (or
// cannot be decoded: the code alone must then do).
function retryHints(error) {
  let details = [];
  try {
    details = statusDetails(error);
  } catch {
    // statusDetailLines says why, when the error is reported.
  }
  const find = (name) => details.find((detail) => detail.name === name)?.message;
  const info = find('google.rpc.ErrorInfo');
  const retry = find('google.rpc.RetryInfo');
  const delay = retry?.retry_delay;
  return {
    reason: info?.reason || undefined,
    retryDelayMs: delay ? Number(delay.seconds) * 1000 + delay.nanos / 1e6 : undefined,
  };
}

// The report of a gRPC error: `error CODE (gRPC status N): message`, then its details indented.
// The message's control characters (a newline in CI's Message) are escaped as in JSON.
const CONTROL = /[\u0000-\u001f]/g;
function errorLines(error) {
  const message = error.details.replace(CONTROL, (c) => JSON.stringify(c).slice(1, -1));
  return [
    `error ${CODE_NAMES[error.code] || 'UNKNOWN'} (gRPC status ${error.code}): ${message}`,
    ...statusDetailLines(error).map((line) => `  ${line}`),
  ];
}

module.exports = { errorLines, retryHints, statusDetailLines };
