// The marketing.v1 client for Node.js: generated messages and service
// descriptor (src/gen, from proto/ by `make generate`), a gRPC transport, and
// a reader for the field violations the service attaches to INVALID_ARGUMENT.
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { ConnectError, Code } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";
import { MarketingService } from "./gen/marketing/v1/service_pb.js";

export * from "./gen/marketing/v1/common_pb.js";
export * from "./gen/marketing/v1/consent_pb.js";
export * from "./gen/marketing/v1/contact_pb.js";
export * from "./gen/marketing/v1/event_pb.js";
export * from "./gen/marketing/v1/service_pb.js";
export { ConnectError, Code };

export type MarketingClient = Client<typeof MarketingService>;

export interface TlsOptions {
  /** PEM CA certificate(s) to trust instead of Node's built-in roots. */
  ca?: string | Buffer;
  /** PEM client certificate chain and its key, where the service requires mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface ClientOptions {
  /** Deadline of every call unless the call sets `timeoutMs` itself (default 10 s). */
  defaultTimeoutMs?: number;
  /** Sent as `authorization: Bearer <token>` with every call. */
  token?: string;
  /** TLS settings; only with an `https://` base URL (refused with `http://`). */
  tls?: TlsOptions;
  /** Run around every call, e.g. to add tracing headers. */
  interceptors?: Interceptor[];
}

function bearer(token: string): Interceptor {
  return (next) => (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
}

/** Hosts whose traffic never leaves this machine: a token to them in clear is fine. */
function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[(.*)\]$/, "$1"); // URL keeps IPv6 in brackets
  return host === "localhost" || host.endsWith(".localhost") || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

// Origins already warned about: once per origin, however many clients are made.
const warnedInClear = new Set<string>();

/**
 * Refuses TLS options that an `http://` URL would silently ignore, and warns
 * (once per origin, as a Node.js process warning) when a token would go in
 * clear to a host other than this one, readable by anyone on the path.
 */
function checkTransportSecurity(baseUrl: string, options: ClientOptions): void {
  const url = new URL(baseUrl);
  if (url.protocol === "https:") return;
  if (options.tls !== undefined) {
    throw new Error(`tls options need an https:// base URL; ${url.origin} would ignore them and speak plaintext`);
  }
  if (options.token === undefined || isLoopback(url.hostname) || warnedInClear.has(url.origin)) return;
  warnedInClear.add(url.origin);
  process.emitWarning(
    `the bearer token goes to ${url.origin} without TLS, readable on the network: use an https:// URL`,
    { type: "PlaintextTokenWarning", code: "MARKETING_PLAINTEXT_TOKEN" },
  );
}

/**
 * A client of the service at `baseUrl`, e.g. "http://127.0.0.1:50051" (or
 * "https://…" when the service speaks TLS), speaking the gRPC protocol over
 * HTTP/2 (the service is a plain grpc server).
 */
export function createMarketingClient(baseUrl: string, options: ClientOptions = {}): MarketingClient {
  checkTransportSecurity(baseUrl, options);
  const interceptors = [
    ...(options.token === undefined ? [] : [bearer(options.token)]),
    ...(options.interceptors ?? []),
  ];
  const transport = createGrpcTransport({
    baseUrl,
    defaultTimeoutMs: options.defaultTimeoutMs ?? 10_000,
    interceptors,
    nodeOptions: options.tls === undefined ? undefined : { ...options.tls },
  });
  return createClient(MarketingService, transport);
}

export interface FieldViolation {
  /** Path of the bad field in the request, e.g. "events[3].email". */
  field: string;
  description: string;
  /** Machine-readable reason, e.g. "INVALID_EMAIL" (empty if the service sent none). */
  reason: string;
}

/**
 * The fields an error names (google.rpc.BadRequest in the status details):
 * every bad field of INVALID_ARGUMENT, the taken field of ALREADY_EXISTS;
 * empty when the error names none.
 */
export function fieldViolations(error: unknown): FieldViolation[] {
  return ConnectError.from(error).findDetails(BadRequestSchema).flatMap((badRequest) =>
    badRequest.fieldViolations.map((v) => ({
      field: v.field,
      description: v.description,
      reason: v.reason,
    })),
  );
}

/** The machine-readable reason of an error (google.rpc.ErrorInfo), or "". */
export function errorReason(error: unknown): string {
  const [info] = ConnectError.from(error).findDetails(ErrorInfoSchema);
  return info?.reason ?? "";
}
