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
  /** TLS settings for an `https://` base URL. */
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

/**
 * A client of the service at `baseUrl`, e.g. "http://127.0.0.1:50051" (or
 * "https://…" when the service speaks TLS), speaking the gRPC protocol over
 * HTTP/2 (the service is a plain grpc server).
 */
export function createMarketingClient(baseUrl: string, options: ClientOptions = {}): MarketingClient {
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
