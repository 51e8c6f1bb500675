import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";

export { Code };

/** The error domain riverlog puts in every `google.rpc.ErrorInfo`. */
export const ERROR_DOMAIN = "riverlog.dev";

/**
 * An error answered by the server (or raised by the transport), with the
 * stable `reason` of the `google.rpc.ErrorInfo` the server attached
 * (STREAM_NOT_FOUND, WRONG_EXPECTED_SEQUENCE, UNAUTHENTICATED, ...).
 */
export class RiverlogError extends Error {
  /** gRPC status code (numeric, see `Code`). */
  readonly code: Code;
  /** gRPC status name, e.g. `NOT_FOUND`. */
  readonly codeName: string;
  /** `ErrorInfo.reason`, e.g. `STREAM_NOT_FOUND`; undefined when the error carried none (transport errors). */
  readonly reason: string | undefined;
  /** `ErrorInfo.domain` (`riverlog.dev`), when present. */
  readonly domain: string | undefined;
  /** `ErrorInfo.metadata`; empty when absent. */
  readonly metadata: Readonly<Record<string, string>>;
  /** The server's message without the status prefix. */
  readonly rawMessage: string;
  /** `RetryInfo.retry_delay` in milliseconds: retrying after this long may succeed (`RATE_LIMITED`); undefined when the error says nothing. */
  readonly retryDelayMs: number | undefined;

  constructor(cause: ConnectError) {
    const info = cause.findDetails(ErrorInfoSchema)[0];
    const codeName = codeToName(cause.code);
    super(
      `${codeName}${info ? ` (${info.reason})` : ""}: ${cause.rawMessage}`,
      { cause },
    );
    this.name = "RiverlogError";
    this.code = cause.code;
    this.codeName = codeName;
    this.reason = info?.reason;
    this.domain = info?.domain;
    this.metadata = { ...(info?.metadata ?? {}) };
    this.rawMessage = cause.rawMessage;
    const delay = cause.findDetails(RetryInfoSchema)[0]?.retryDelay;
    this.retryDelayMs = delay ? Number(delay.seconds) * 1000 + delay.nanos / 1e6 : undefined;
  }
}

/** Converts anything thrown by a call into a RiverlogError. */
export function toRiverlogError(err: unknown): RiverlogError {
  if (err instanceof RiverlogError) {
    return err;
  }
  return new RiverlogError(ConnectError.from(err));
}

function codeToName(code: Code): string {
  const name = Code[code];
  if (name === undefined) {
    return `CODE_${code}`;
  }
  if (code === Code.Canceled) {
    return "CANCELLED"; // gRPC's spelling
  }
  // "InvalidArgument" -> "INVALID_ARGUMENT"
  return name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}
