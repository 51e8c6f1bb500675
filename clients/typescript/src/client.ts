import { create } from "@bufbuild/protobuf";
import { durationFromMs, EmptySchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type CallOptions,
  type Client as ConnectClient,
  Code,
  ConnectError,
  createClient,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { toRiverlogError } from "./errors.js";
import { Producer, type ProducerOptions, toPublished } from "./producer.js";
import { type Event, type EventInput, optionalDate, toCloudEvent, toEvent } from "./events.js";
import { Checkpoints } from "./gen/riverlog/v1/checkpoints_pb.js";
import {
  ConsumerGroups,
  type GroupInfo,
  type GroupStart,
  type PendingEntry,
  type PendingSummary,
} from "./gen/riverlog/v1/consumer_groups_pb.js";
import {
  EventLog,
  type PublishRequest,
  ReadDirection,
  type ReadRequest,
  StreamState,
  TakeEnd,
} from "./gen/riverlog/v1/event_log_pb.js";
import {
  type EventFilter,
  type StartPosition,
  type StreamInfo,
  EventFilterSchema,
  RetentionSchema,
} from "./gen/riverlog/v1/types_pb.js";

/** How streaming calls (subscribe, consume) reconnect after a transient failure. */
export interface ReconnectOptions {
  /** First delay before reconnecting; doubled on each failed attempt. Default 100 ms. */
  initialDelayMs?: number;
  /** Largest delay between attempts. Default 5000 ms. */
  maxDelayMs?: number;
  /** Consecutive failed attempts before giving up (the error is thrown); default Infinity. 0 disables reconnecting. */
  maxAttempts?: number;
}

export interface ClientOptions {
  /** Bearer token sent as `authorization: Bearer <token>`. */
  token?: string;
  /** Default `source` of published events that set none. Default `/riverlog/client-ts`. */
  source?: string;
  /** Deadline of unary calls in milliseconds; default none. */
  timeoutMs?: number;
  /** Reconnect policy of `subscribe` and `consume`. */
  reconnect?: ReconnectOptions;
  /** Extra Connect interceptors (logging, tracing, ...). */
  interceptors?: Interceptor[];
}

/** A server-side filter on CloudEvent attributes (`*` wildcards allowed). */
export interface Filter {
  types?: string[];
  sources?: string[];
  subjects?: string[];
}

export type StreamStateCondition = "no_stream" | "exists";

export interface PublishOptions {
  /** Fails with WRONG_EXPECTED_SEQUENCE unless the stream's last sequence equals this (0: no event ever). */
  expectedLastSequence?: bigint | number;
  /** Fails with WRONG_EXPECTED_SEQUENCE unless the stream does not exist / exists. */
  expectedState?: StreamStateCondition;
  signal?: AbortSignal;
}

/** Where one published event landed. */
export interface Published {
  id: string;
  sequence: bigint;
  position: bigint;
  /** True when the stream already held this id: nothing was appended, sequence/position are the original's. */
  duplicate: boolean;
  recordedAt: Date | undefined;
}

export interface ReadOptions {
  /** First sequence (inclusive). */
  fromSequence?: bigint | number;
  /** First recording time (inclusive). */
  fromTime?: Date;
  /** Default forward. */
  direction?: "forward" | "backward";
  /** Page size; default 100, at most 1000. */
  limit?: number;
  filter?: Filter;
  signal?: AbortSignal;
}

export interface ReadResult {
  events: Event[];
  /** Pass as `fromSequence` to read the next page. */
  nextSequence: bigint;
  /** No further event exists in this direction right now. */
  endOfStream: boolean;
}

/** Where a subscription starts. */
export type Start =
  | "earliest"
  | "latest"
  | { sequence: bigint | number }
  | { position: bigint | number }
  | { time: Date }
  | { checkpoint: string };

export interface SubscribeOptions {
  /** Default `earliest`. */
  start?: Start;
  filter?: Filter;
  /** Server heartbeat interval; default 15 s (server side). */
  heartbeatIntervalMs?: number;
  /** Called once per connection when history has been delivered and the subscription turns live. */
  onCaughtUp?: (position: bigint) => void;
  /** Called before each reconnect attempt with the error that ended the previous one. */
  onReconnect?: (error: Error, attempt: number) => void;
  /** Overrides the client's reconnect policy. */
  reconnect?: ReconnectOptions;
  signal?: AbortSignal;
}

export interface ConsumeOptions {
  /** Unacked deliveries this consumer may hold; default 100 (server side). */
  maxInFlight?: number;
  heartbeatIntervalMs?: number;
  onReconnect?: (error: Error, attempt: number) => void;
  reconnect?: ReconnectOptions;
  signal?: AbortSignal;
}

/** An event handed to one consumer of a group; ack it when processed. */
export interface Delivery {
  readonly event: Event;
  /** 1 on first delivery, incremented on each redelivery. */
  readonly deliveryCount: number;
  readonly stream: string;
  readonly group: string;
  readonly consumer: string;
  /** The event's sequence in the stream (what ack and nack name). */
  readonly sequence: bigint;
  /** Acknowledges the delivery: it leaves the pending list. False if it was no longer pending. */
  ack(): Promise<boolean>;
  /**
   * Rejects the delivery: it is delivered again after `delayMs` (default 0),
   * counting toward the group's max deliveries. False if this consumer no
   * longer held it.
   */
  nack(options?: { delayMs?: number }): Promise<boolean>;
}

export interface CreateGroupOptions {
  /** Default `earliest`. */
  start?: "earliest" | "latest" | { sequence: bigint | number };
  ackTimeoutMs?: number;
  maxDeliveries?: number;
  deadLetterStream?: string;
}

export interface FetchOptions {
  count?: number;
  blockMs?: number;
  pendingOnly?: boolean;
}

function filterMessage(filter: Filter | undefined): EventFilter | undefined {
  if (!filter) {
    return undefined;
  }
  return create(EventFilterSchema, {
    types: filter.types ?? [],
    sources: filter.sources ?? [],
    subjects: filter.subjects ?? [],
  });
}

function startMessage(start: Start | undefined): StartPosition["start"] {
  const empty = create(EmptySchema);
  if (start === undefined || start === "earliest") {
    return { case: "earliest", value: empty };
  }
  if (start === "latest") {
    return { case: "latest", value: empty };
  }
  if ("sequence" in start) {
    return { case: "sequence", value: BigInt(start.sequence) };
  }
  if ("position" in start) {
    return { case: "position", value: BigInt(start.position) };
  }
  if ("time" in start) {
    return { case: "time", value: timestampFromDate(start.time) };
  }
  return { case: "checkpoint", value: start.checkpoint };
}

/** Codes after which a streaming call is retried. */
const TRANSIENT = new Set<Code>([
  Code.Unavailable,
  Code.Aborted,
  Code.Internal,
  Code.Unknown,
  Code.DeadlineExceeded,
]);

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function normalizeTarget(target: string): string {
  if (/^https?:\/\//.test(target)) {
    return target;
  }
  return `http://${target}`;
}

/**
 * A riverlog client. `target` is `host:port` (plaintext HTTP/2) or a URL
 * (`http://host:port`, `https://host:port` for TLS).
 *
 * ```ts
 * const client = new Client("127.0.0.1:50051", { token: process.env.RIVERLOG_TOKEN });
 * ```
 */
export class Client {
  /** Generated Connect clients, for calls the typed layer does not wrap. */
  readonly eventLog: ConnectClient<typeof EventLog>;
  readonly consumerGroups: ConnectClient<typeof ConsumerGroups>;
  readonly checkpoints: ConnectClient<typeof Checkpoints>;
  readonly transport: Transport;

  private readonly session: Http2SessionManager;
  private readonly options: ClientOptions;
  private readonly closed = new AbortController();

  constructor(target: string, options: ClientOptions = {}) {
    this.options = options;
    const baseUrl = normalizeTarget(target);
    this.session = new Http2SessionManager(baseUrl, {
      // Notice a dead connection (server gone without closing it) in ~20 s.
      pingIntervalMs: 10_000,
      pingTimeoutMs: 10_000,
    });
    const interceptors: Interceptor[] = [];
    const token = options.token;
    if (token !== undefined && token !== "") {
      interceptors.push((next) => async (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      });
    }
    interceptors.push(...(options.interceptors ?? []));
    this.transport = createGrpcTransport({
      baseUrl,
      sessionManager: this.session,
      interceptors,
    });
    this.eventLog = createClient(EventLog, this.transport);
    this.consumerGroups = createClient(ConsumerGroups, this.transport);
    this.checkpoints = createClient(Checkpoints, this.transport);
  }

  /** Closes the connection; running subscriptions and consumers end. */
  close(): void {
    this.closed.abort();
    this.session.abort();
  }

  private callOptions(signal?: AbortSignal): CallOptions {
    const options: CallOptions = {};
    if (this.options.timeoutMs !== undefined) {
      options.timeoutMs = this.options.timeoutMs;
    }
    if (signal) {
      options.signal = signal;
    }
    return options;
  }

  private async unary<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw toRiverlogError(err);
    }
  }

  // ---- EventLog ----

  /**
   * Appends events to a stream atomically (all or none). Publishing is
   * idempotent by event id: a repeated id answers the original position
   * flagged `duplicate`.
   */
  async publish(
    stream: string,
    events: EventInput | EventInput[],
    options: PublishOptions = {},
  ): Promise<Published[]> {
    const source = this.options.source ?? "/riverlog/client-ts";
    const list = Array.isArray(events) ? events : [events];
    let expected: PublishRequest["expected"] = { case: undefined };
    if (options.expectedLastSequence !== undefined) {
      expected = { case: "expectedLastSequence", value: BigInt(options.expectedLastSequence) };
    } else if (options.expectedState !== undefined) {
      expected = {
        case: "expectedState",
        value:
          options.expectedState === "no_stream"
            ? StreamState.NO_STREAM
            : StreamState.EXISTS,
      };
    }
    const request = {
      stream,
      events: list.map((event) => toCloudEvent(event, source)),
      expected,
    };
    const response = await this.unary(() =>
      this.eventLog.publish(request, this.callOptions(options.signal)),
    );
    return response.positions.map(toPublished);
  }

  /**
   * A batching producer over one `PublishStream` call: `send` resolves
   * once the event is queued, to a promise of its position or of the
   * error its batch was refused with (see {@link Producer}). Close it
   * when done.
   */
  producer(options: ProducerOptions = {}): Producer {
    const source = this.options.source;
    return new Producer(this, source === undefined ? options : { source, ...options });
  }

  /** Reads one page of a stream's history. */
  async read(stream: string, options: ReadOptions = {}): Promise<ReadResult> {
    let from: ReadRequest["from"] = { case: undefined };
    if (options.fromSequence !== undefined) {
      from = { case: "fromSequence", value: BigInt(options.fromSequence) };
    } else if (options.fromTime !== undefined) {
      from = { case: "fromTime", value: timestampFromDate(options.fromTime) };
    }
    const filter = filterMessage(options.filter);
    const response = await this.unary(() =>
      this.eventLog.read(
        {
          stream,
          from,
          direction:
            options.direction === "backward" ? ReadDirection.BACKWARD : ReadDirection.FORWARD,
          limit: options.limit ?? 0,
          ...(filter ? { filter } : {}),
        },
        this.callOptions(options.signal),
      ),
    );
    return {
      events: response.events.map(toEvent),
      nextSequence: response.nextSequence,
      endOfStream: response.endOfStream,
    };
  }

  /** Reads a stream's whole history page by page, as an async iterator. */
  async *readAll(stream: string, options: ReadOptions = {}): AsyncGenerator<Event, void, undefined> {
    let page = await this.read(stream, options);
    for (;;) {
      yield* page.events;
      if (page.endOfStream || page.events.length === 0) {
        return;
      }
      const { fromTime: _ignored, ...rest } = options;
      page = await this.read(stream, { ...rest, fromSequence: page.nextSequence });
    }
  }

  /**
   * Subscribes to streams (names or `*` patterns): the matching history,
   * then live events. The iterator reconnects after transient failures
   * (server restart, network) and resumes right after the last position it
   * yielded, so no event is repeated or skipped. End it with `break`,
   * `subscription.close()` or an AbortSignal.
   */
  subscribe(streams: string | string[], options: SubscribeOptions = {}): Subscription {
    return new Subscription(this, Array.isArray(streams) ? streams : [streams], options);
  }

  async createStream(stream: string, options: { retention?: { maxEvents?: bigint | number; maxAgeMs?: number; ttlMs?: number } } = {}): Promise<StreamInfo> {
    const r = options.retention;
    const retention = r
      ? create(RetentionSchema, {
          maxEvents: BigInt(r.maxEvents ?? 0),
          ...(r.maxAgeMs !== undefined ? { maxAge: durationFromMs(r.maxAgeMs) } : {}),
          ...(r.ttlMs !== undefined ? { ttl: durationFromMs(r.ttlMs) } : {}),
        })
      : undefined;
    const response = await this.unary(() =>
      this.eventLog.createStream({ stream, ...(retention ? { retention } : {}) }, this.callOptions()),
    );
    return response.info!;
  }

  async getStream(stream: string): Promise<StreamInfo> {
    const response = await this.unary(() => this.eventLog.getStream({ stream }, this.callOptions()));
    return response.info!;
  }

  /** Lists all streams (following pages), optionally matching a pattern. */
  async listStreams(pattern = ""): Promise<StreamInfo[]> {
    const streams: StreamInfo[] = [];
    let pageToken = "";
    do {
      const response = await this.unary(() =>
        this.eventLog.listStreams({ pattern, pageToken, pageSize: 1000 }, this.callOptions()),
      );
      streams.push(...response.streams);
      pageToken = response.nextPageToken;
    } while (pageToken !== "");
    return streams;
  }

  /** Deletes a stream; answers how many events were deleted with it. */
  async deleteStream(stream: string): Promise<bigint> {
    const response = await this.unary(() => this.eventLog.deleteStream({ stream }, this.callOptions()));
    return response.eventsDeleted;
  }

  /** Removes old events; exactly one of the options. Answers how many were removed. */
  async trim(
    stream: string,
    until: { maxEvents: bigint | number } | { beforeSequence: bigint | number } | { beforeTime: Date },
  ): Promise<bigint> {
    const u =
      "maxEvents" in until
        ? { case: "maxEvents" as const, value: BigInt(until.maxEvents) }
        : "beforeSequence" in until
          ? { case: "beforeSequence" as const, value: BigInt(until.beforeSequence) }
          : { case: "beforeTime" as const, value: timestampFromDate(until.beforeTime) };
    const response = await this.unary(() => this.eventLog.trim({ stream, until: u }, this.callOptions()));
    return response.removed;
  }

  /** Destructive read from the oldest (queue) or newest (stack) end. */
  async take(stream: string, options: { end?: "oldest" | "newest"; limit?: number } = {}): Promise<Event[]> {
    const response = await this.unary(() =>
      this.eventLog.take(
        {
          stream,
          end: options.end === "newest" ? TakeEnd.NEWEST : TakeEnd.OLDEST,
          limit: options.limit ?? 0,
        },
        this.callOptions(),
      ),
    );
    return response.events.map(toEvent);
  }

  // ---- ConsumerGroups ----

  async createGroup(stream: string, group: string, options: CreateGroupOptions = {}): Promise<GroupInfo> {
    const empty = create(EmptySchema);
    const s = options.start;
    const start: GroupStart["start"] =
      s === undefined || s === "earliest"
        ? { case: "earliest", value: empty }
        : s === "latest"
          ? { case: "latest", value: empty }
          : { case: "sequence", value: BigInt(s.sequence) };
    const response = await this.unary(() =>
      this.consumerGroups.createGroup(
        {
          stream,
          group,
          start: { start },
          ...(options.ackTimeoutMs !== undefined ? { ackTimeout: durationFromMs(options.ackTimeoutMs) } : {}),
          maxDeliveries: options.maxDeliveries ?? 0,
          deadLetterStream: options.deadLetterStream ?? "",
        },
        this.callOptions(),
      ),
    );
    return response.info!;
  }

  async getGroup(stream: string, group: string): Promise<GroupInfo> {
    const response = await this.unary(() => this.consumerGroups.getGroup({ stream, group }, this.callOptions()));
    return response.info!;
  }

  async listGroups(stream: string): Promise<GroupInfo[]> {
    const response = await this.unary(() => this.consumerGroups.listGroups({ stream }, this.callOptions()));
    return response.groups;
  }

  async deleteGroup(stream: string, group: string): Promise<void> {
    await this.unary(() => this.consumerGroups.deleteGroup({ stream, group }, this.callOptions()));
  }

  /**
   * Consumes a group's events as this consumer: an async iterator of
   * deliveries, each to be acked (`delivery.ack()`) when processed or
   * nacked to have it delivered again. Reconnects after transient failures;
   * unacked deliveries are redelivered by the server after the group's ack
   * timeout.
   */
  consume(stream: string, group: string, consumer: string, options: ConsumeOptions = {}): Consumer {
    return new Consumer(this, stream, group, consumer, options);
  }

  /** Unary pull of up to `count` deliveries, waiting up to `blockMs` for the first. */
  async fetch(stream: string, group: string, consumer: string, options: FetchOptions = {}): Promise<Delivery[]> {
    const response = await this.unary(() =>
      this.consumerGroups.fetch(
        {
          stream,
          group,
          consumer,
          count: options.count ?? 0,
          blockMs: options.blockMs ?? 0,
          pendingOnly: options.pendingOnly ?? false,
        },
        this.callOptions(),
      ),
    );
    return response.deliveries.map((d) =>
      this.delivery(stream, group, consumer, d.event ? toEvent(d.event) : undefined, d.deliveryCount),
    );
  }

  /** Acknowledges deliveries by sequence; answers how many were pending. */
  async ack(stream: string, group: string, sequences: Array<bigint | number>): Promise<bigint> {
    const response = await this.unary(() =>
      this.consumerGroups.ack({ stream, group, sequences: sequences.map(BigInt) }, this.callOptions()),
    );
    return response.acked;
  }

  /**
   * Rejects deliveries held by `consumer`: delivered again after `delayMs`;
   * one that was its group's last allowed delivery goes to the dead-letter
   * stream at once instead.
   */
  async nack(
    stream: string,
    group: string,
    consumer: string,
    sequences: Array<bigint | number>,
    options: { delayMs?: number } = {},
  ): Promise<bigint> {
    const response = await this.unary(() =>
      this.consumerGroups.nack(
        {
          stream,
          group,
          consumer,
          sequences: sequences.map(BigInt),
          ...(options.delayMs !== undefined ? { delay: durationFromMs(options.delayMs) } : {}),
        },
        this.callOptions(),
      ),
    );
    return response.nacked;
  }

  async listPending(
    stream: string,
    group: string,
    options: { consumer?: string; minIdleMs?: number; limit?: number; afterSequence?: bigint | number } = {},
  ): Promise<{ summary: PendingSummary | undefined; entries: PendingEntry[] }> {
    const response = await this.unary(() =>
      this.consumerGroups.listPending(
        {
          stream,
          group,
          consumer: options.consumer ?? "",
          ...(options.minIdleMs !== undefined ? { minIdle: durationFromMs(options.minIdleMs) } : {}),
          limit: options.limit ?? 0,
          afterSequence: BigInt(options.afterSequence ?? 0),
        },
        this.callOptions(),
      ),
    );
    return { summary: response.summary, entries: response.entries };
  }

  /** Takes over pending entries idle at least `minIdleMs`: named ones, or the oldest `count`. */
  async claim(
    stream: string,
    group: string,
    consumer: string,
    options: { minIdleMs?: number; sequences?: Array<bigint | number>; count?: number } = {},
  ): Promise<Delivery[]> {
    const response = await this.unary(() =>
      this.consumerGroups.claim(
        {
          stream,
          group,
          consumer,
          ...(options.minIdleMs !== undefined ? { minIdle: durationFromMs(options.minIdleMs) } : {}),
          sequences: (options.sequences ?? []).map(BigInt),
          count: options.count ?? 0,
        },
        this.callOptions(),
      ),
    );
    return response.deliveries.map((d) =>
      this.delivery(stream, group, consumer, d.event ? toEvent(d.event) : undefined, d.deliveryCount),
    );
  }

  /** Removes a consumer; answers how many pending entries it released. */
  async deleteConsumer(stream: string, group: string, consumer: string): Promise<bigint> {
    const response = await this.unary(() =>
      this.consumerGroups.deleteConsumer({ stream, group, consumer }, this.callOptions()),
    );
    return response.pendingReleased;
  }

  // ---- Checkpoints ----

  /** Stores the last processed sequence (per-stream) or global position under a name. */
  async commitCheckpoint(
    name: string,
    at: { stream: string; sequence: bigint | number } | { stream?: string; position: bigint | number },
  ): Promise<void> {
    const request =
      "sequence" in at
        ? { name, stream: at.stream, at: { case: "sequence" as const, value: BigInt(at.sequence) } }
        : { name, stream: at.stream ?? "", at: { case: "position" as const, value: BigInt(at.position) } };
    await this.unary(() => this.checkpoints.commitCheckpoint(request, this.callOptions()));
  }

  /** Reads a checkpoint; undefined when it was never committed. */
  async getCheckpoint(
    name: string,
    stream = "",
  ): Promise<{ sequence: bigint; position: bigint; committedAt: Date | undefined } | undefined> {
    try {
      const response = await this.unary(() => this.checkpoints.getCheckpoint({ name, stream }, this.callOptions()));
      const c = response.checkpoint;
      return c ? { sequence: c.sequence, position: c.position, committedAt: optionalDate(c.committedAt) } : undefined;
    } catch (err) {
      if (err instanceof Error && "code" in err && err.code === Code.NotFound) {
        return undefined;
      }
      throw err;
    }
  }

  // ---- internals shared with Subscription and Consumer ----

  /** @internal */
  get closedSignal(): AbortSignal {
    return this.closed.signal;
  }

  /** @internal */
  reconnectPolicy(override?: ReconnectOptions): Required<ReconnectOptions> {
    const base = { ...this.options.reconnect, ...override };
    return {
      initialDelayMs: base.initialDelayMs ?? 100,
      maxDelayMs: base.maxDelayMs ?? 5000,
      maxAttempts: base.maxAttempts ?? Infinity,
    };
  }

  /** @internal */
  delivery(stream: string, group: string, consumer: string, event: Event | undefined, deliveryCount: number): Delivery {
    if (!event) {
      throw new ConnectError("delivery without an event", Code.Internal);
    }
    return {
      event,
      deliveryCount,
      stream,
      group,
      consumer,
      sequence: event.sequence,
      ack: async () => (await this.ack(stream, group, [event.sequence])) === 1n,
      nack: async (options: { delayMs?: number } = {}) =>
        (await this.nack(stream, group, consumer, [event.sequence], options)) === 1n,
    };
  }
}

/**
 * Runs `open` (a streaming call) again after transient failures with
 * exponential backoff, until `signal` aborts or the attempts run out.
 */
async function* withReconnect<T>(
  policy: Required<ReconnectOptions>,
  signal: AbortSignal,
  onReconnect: ((error: Error, attempt: number) => void) | undefined,
  open: (signal: AbortSignal) => AsyncIterable<T>,
): AsyncGenerator<T, void, undefined> {
  let failures = 0;
  for (;;) {
    let error: Error;
    try {
      for await (const message of open(signal)) {
        failures = 0;
        yield message;
      }
      if (signal.aborted) {
        return;
      }
      // The server ended the stream without an error: reconnect as well.
      error = new ConnectError("stream ended by the server", Code.Unavailable);
    } catch (err) {
      if (signal.aborted) {
        return;
      }
      const connectError = ConnectError.from(err);
      if (!TRANSIENT.has(connectError.code)) {
        throw toRiverlogError(connectError);
      }
      error = toRiverlogError(connectError);
    }
    failures += 1;
    if (failures > policy.maxAttempts) {
      throw error;
    }
    const delay = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(failures - 1, 30));
    onReconnect?.(error, failures);
    // Full jitter on the upper half, so many clients do not reconnect in step.
    await sleep(delay / 2 + (Math.random() * delay) / 2, signal);
    if (signal.aborted) {
      return;
    }
  }
}

function linkSignals(...signals: Array<AbortSignal | undefined>): AbortController {
  const controller = new AbortController();
  for (const s of signals) {
    if (!s) {
      continue;
    }
    if (s.aborted) {
      controller.abort(s.reason);
    } else {
      s.addEventListener("abort", () => controller.abort(s.reason), { once: true });
    }
  }
  return controller;
}

/**
 * A live subscription: an async iterable of events that resumes after the
 * last position it yielded when the connection drops.
 */
export class Subscription implements AsyncIterable<Event> {
  /** Position of the last event yielded; undefined before the first. */
  lastPosition: bigint | undefined;
  /** True once the current connection has delivered the history. */
  caughtUp = false;
  /** Reconnections so far. */
  reconnects = 0;

  private readonly controller: AbortController;
  /** Next position to ask for on reconnect (a position every event below which was seen or filtered out). */
  private resumeFrom: bigint | undefined;
  private started = false;

  constructor(
    private readonly client: Client,
    private readonly streams: string[],
    private readonly options: SubscribeOptions,
  ) {
    this.controller = linkSignals(client.closedSignal, options.signal);
  }

  /** Ends the subscription; a pending `next()` resolves as done. */
  close(): void {
    this.controller.abort();
  }

  [Symbol.asyncIterator](): AsyncIterator<Event> {
    if (this.started) {
      throw new Error("a Subscription can be iterated only once");
    }
    this.started = true;
    return this.run();
  }

  private advance(position: bigint): void {
    if (this.resumeFrom === undefined || position + 1n > this.resumeFrom) {
      this.resumeFrom = position + 1n;
    }
  }

  private async *run(): AsyncGenerator<Event, void, undefined> {
    const signal = this.controller.signal;
    const filter = filterMessage(this.options.filter);
    const messages = withReconnect(
      this.client.reconnectPolicy(this.options.reconnect),
      signal,
      (error, attempt) => {
        this.reconnects += 1;
        this.caughtUp = false;
        this.options.onReconnect?.(error, attempt);
      },
      (callSignal) => {
        const start: StartPosition["start"] =
          this.resumeFrom === undefined
            ? startMessage(this.options.start)
            : { case: "position", value: this.resumeFrom };
        return this.client.eventLog.subscribe(
          {
            streams: this.streams,
            start: { start },
            ...(filter ? { filter } : {}),
            ...(this.options.heartbeatIntervalMs !== undefined
              ? { heartbeatInterval: durationFromMs(this.options.heartbeatIntervalMs) }
              : {}),
          },
          { signal: callSignal },
        );
      },
    );
    try {
      for await (const response of messages) {
        const message = response.message;
        switch (message.case) {
          case "event": {
            const event = toEvent(message.value);
            if (this.lastPosition !== undefined && event.position <= this.lastPosition) {
              continue; // never yield an event twice
            }
            this.lastPosition = event.position;
            this.advance(event.position);
            yield event;
            break;
          }
          case "heartbeat":
            if (message.value.position > 0n) {
              this.advance(message.value.position);
            }
            break;
          case "caughtUp":
            this.caughtUp = true;
            if (message.value.position > 0n) {
              this.advance(message.value.position);
            }
            this.options.onCaughtUp?.(message.value.position);
            break;
        }
      }
    } finally {
      this.controller.abort();
    }
  }
}

/** The deliveries of one consumer of a group, as an async iterable. */
export class Consumer implements AsyncIterable<Delivery> {
  /** Reconnections so far. */
  reconnects = 0;

  private readonly controller: AbortController;
  private started = false;

  constructor(
    private readonly client: Client,
    readonly stream: string,
    readonly group: string,
    readonly consumer: string,
    private readonly options: ConsumeOptions,
  ) {
    this.controller = linkSignals(client.closedSignal, options.signal);
  }

  /** Stops consuming; unacked deliveries stay pending (redelivered after the ack timeout). */
  close(): void {
    this.controller.abort();
  }

  [Symbol.asyncIterator](): AsyncIterator<Delivery> {
    if (this.started) {
      throw new Error("a Consumer can be iterated only once");
    }
    this.started = true;
    return this.run();
  }

  private async *run(): AsyncGenerator<Delivery, void, undefined> {
    const signal = this.controller.signal;
    const messages = withReconnect(
      this.client.reconnectPolicy(this.options.reconnect),
      signal,
      (error, attempt) => {
        this.reconnects += 1;
        this.options.onReconnect?.(error, attempt);
      },
      (callSignal) =>
        this.client.consumerGroups.consume(
          {
            stream: this.stream,
            group: this.group,
            consumer: this.consumer,
            maxInFlight: this.options.maxInFlight ?? 0,
            ...(this.options.heartbeatIntervalMs !== undefined
              ? { heartbeatInterval: durationFromMs(this.options.heartbeatIntervalMs) }
              : {}),
          },
          { signal: callSignal },
        ),
    );
    try {
      for await (const response of messages) {
        if (response.message.case === "delivery") {
          const d = response.message.value;
          yield this.client.delivery(
            this.stream,
            this.group,
            this.consumer,
            d.event ? toEvent(d.event) : undefined,
            d.deliveryCount,
          );
        }
      }
    } finally {
      this.controller.abort();
    }
  }
}
