import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { RiverlogError, toRiverlogError } from "./errors.js";
import { type EventInput, optionalDate, toCloudEvent } from "./events.js";
import { type CloudEvent, CloudEventSchema } from "./gen/riverlog/v1/cloudevent_pb.js";
import { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";
import {
  type PublishedPosition,
  type PublishRequest,
  PublishRequestSchema,
  type RequestError,
} from "./gen/riverlog/v1/event_log_pb.js";
import type { Client, Published } from "./client.js";

/** How a {@link Producer} batches. */
export interface ProducerOptions {
  /** Most events in one batch (one request). Default 500. */
  maxBatchEvents?: number;
  /** About the most encoded event bytes in one batch; a single larger event goes alone. Default 1 MiB. */
  maxBatchBytes?: number;
  /** How long the first event of a batch waits for more, in milliseconds. Default 5. */
  lingerMs?: number;
  /** Most events queued or in flight: `send` waits while this many are unanswered. Default 20000. */
  maxBuffered?: number;
  /** `source` of events that set none. Default: the client's (`ClientOptions.source`). */
  source?: string;
}

interface Waiter {
  resolve: (p: Published) => void;
  reject: (e: RiverlogError) => void;
}

/** Events of one stream that go out as one request: one atomic publish. */
class Batch {
  readonly events: CloudEvent[] = [];
  readonly waiters: Waiter[] = [];
  bytes = 0;
  constructor(
    readonly stream: string,
    /** When the batch goes out even if not full (`performance.now()` ms). */
    readonly deadline: number,
  ) {}

  fail(error: RiverlogError): void {
    for (const w of this.waiters) {
      w.reject(error);
    }
  }
}

/** Where one event landed, from its answer. */
export function toPublished(p: PublishedPosition): Published {
  return {
    id: p.id,
    sequence: p.sequence,
    position: p.position,
    duplicate: p.duplicate,
    recordedAt: optionalDate(p.recordedAt),
  };
}

/** The refusal of one request, as the error a unary publish throws. */
function requestError(e: RequestError): RiverlogError {
  return new RiverlogError(
    new ConnectError(e.message, e.code as Code, undefined, [
      { desc: ErrorInfoSchema, value: { reason: e.reason, domain: e.domain, metadata: e.metadata } },
    ]),
  );
}

/**
 * Publishes events in batches over one `PublishStream` call (see
 * `Client.producer`).
 *
 * `send` queues one event for a stream and resolves to its position, or
 * rejects with the {@link RiverlogError} its batch was refused with. Events
 * of one stream are batched in the order sent; a batch goes out when full,
 * when its first event has waited `lingerMs`, or on `flush`. Many batches
 * are in flight on the one call; the server answers them in order.
 *
 * A batch is one atomic publish: a refused batch (an invalid event, a
 * stream the token may not publish to, the rate limit) rejects every
 * event of it, while other batches still commit. When the call itself
 * fails (server unreachable or shutting down, unknown token) every
 * unanswered event rejects with that error and the producer is done:
 * events are idempotent by id, so sending them again with a new producer
 * is safe. The call is never retried behind the caller's back.
 */
export class Producer {
  private readonly maxEvents: number;
  private readonly maxBytes: number;
  private readonly lingerMs: number;
  private readonly maxBuffered: number;
  private readonly source: string;
  /** Batches being filled, by stream, in the order they were opened. */
  private readonly open = new Map<string, Batch>();
  /** Full batches waiting to go out, in order. */
  private readonly ready: Batch[] = [];
  /** Batches sent and not answered, in order. */
  private readonly inFlight: Batch[] = [];
  private buffered = 0;
  private flushing = 0;
  private closing = false;
  private error: RiverlogError | undefined;
  /** Wakes the request stream when a batch may be ready. */
  private wakeSender: (() => void) | undefined;
  /** Woken whenever answers arrive or the call ends. */
  private progress: Array<() => void> = [];
  private readonly finished: Promise<void>;

  constructor(client: Client, options: ProducerOptions = {}) {
    this.maxEvents = options.maxBatchEvents ?? 500;
    this.maxBytes = options.maxBatchBytes ?? 1 << 20;
    this.lingerMs = options.lingerMs ?? 5;
    this.maxBuffered = options.maxBuffered ?? 20_000;
    this.source = options.source ?? "/riverlog/client-ts";
    if (this.maxEvents < 1 || this.maxBytes < 1 || this.maxBuffered < 1 || this.lingerMs < 0) {
      throw new RangeError("batch limits and maxBuffered must be positive, lingerMs >= 0");
    }
    this.finished = this.run(client);
  }

  /** Queues `event` for `stream`; resolves to where it landed. Waits first while `maxBuffered` events are unanswered. */
  async send(stream: string, event: EventInput): Promise<Published> {
    const message = toCloudEvent(event, this.source);
    while (this.buffered >= this.maxBuffered && !this.stopped()) {
      await this.nextProgress();
    }
    if (this.error) {
      throw this.error;
    }
    if (this.closing) {
      throw new Error("the producer is closed");
    }
    const size = toBinary(CloudEventSchema, message).length;
    let batch = this.open.get(stream);
    if (batch && (batch.events.length >= this.maxEvents || batch.bytes + size > this.maxBytes)) {
      this.ready.push(batch);
      this.open.delete(stream);
      batch = undefined;
    }
    if (!batch) {
      batch = new Batch(stream, performance.now() + this.lingerMs);
      this.open.set(stream, batch);
    }
    const published = new Promise<Published>((resolve, reject) => {
      batch.waiters.push({ resolve, reject });
    });
    batch.events.push(message);
    batch.bytes += size;
    this.buffered += 1;
    if (batch.events.length >= this.maxEvents) {
      this.ready.push(batch);
      this.open.delete(stream);
    }
    this.wake();
    return published;
  }

  /**
   * Sends every queued event now and waits until all are answered. Throws
   * the call's error if the call failed; refusals of single batches are in
   * their events' promises.
   */
  async flush(): Promise<void> {
    this.flushing += 1;
    this.wake();
    try {
      while ((this.open.size > 0 || this.ready.length > 0 || this.inFlight.length > 0) && !this.error) {
        await this.nextProgress();
      }
    } finally {
      this.flushing -= 1;
    }
    if (this.error) {
      throw this.error;
    }
  }

  /** Flushes, then ends the call. Idempotent. */
  async close(): Promise<void> {
    try {
      if (!this.error && !this.closing) {
        await this.flush();
      }
    } finally {
      this.closing = true;
      this.wake();
      await this.finished;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private stopped(): boolean {
    return this.closing || this.error !== undefined;
  }

  private wake(): void {
    const wake = this.wakeSender;
    this.wakeSender = undefined;
    wake?.();
  }

  private nextProgress(): Promise<void> {
    return new Promise((resolve) => this.progress.push(resolve));
  }

  private notifyProgress(): void {
    const waiting = this.progress;
    this.progress = [];
    for (const resolve of waiting) {
      resolve();
    }
  }

  /** The next batch to send, waiting for one; undefined ends the call. */
  private async nextBatch(): Promise<Batch | undefined> {
    for (;;) {
      if (this.error) {
        return undefined;
      }
      const now = performance.now();
      if (this.ready.length === 0) {
        // Open batches leave in the order they were opened.
        for (const [stream, batch] of this.open) {
          if (this.flushing > 0 || this.closing || batch.deadline <= now) {
            this.ready.push(batch);
            this.open.delete(stream);
          }
        }
      }
      const batch = this.ready.shift();
      if (batch) {
        this.inFlight.push(batch);
        return batch;
      }
      if (this.closing) {
        return undefined;
      }
      let earliest = Infinity;
      for (const b of this.open.values()) {
        earliest = Math.min(earliest, b.deadline);
      }
      await new Promise<void>((resolve) => {
        const timer = earliest === Infinity ? undefined : setTimeout(resolve, Math.max(0, earliest - now));
        this.wakeSender = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private async *requests(): AsyncGenerator<PublishRequest> {
    for (;;) {
      const batch = await this.nextBatch();
      if (!batch) {
        return;
      }
      yield create(PublishRequestSchema, { stream: batch.stream, events: batch.events });
    }
  }

  private async run(client: Client): Promise<void> {
    let error: RiverlogError | undefined;
    try {
      const answers = client.eventLog.publishStream(this.requests(), { signal: client.closedSignal });
      for await (const answer of answers) {
        const batch = this.inFlight.shift();
        if (!batch) {
          throw new ConnectError("an answer PublishStream did not owe", Code.Internal);
        }
        this.buffered -= batch.waiters.length;
        if (answer.error) {
          batch.fail(requestError(answer.error));
        } else {
          batch.waiters.forEach((w, i) => {
            const position = answer.positions[i];
            if (position) {
              w.resolve(toPublished(position));
            } else {
              w.reject(toRiverlogError(new ConnectError("no position for this event", Code.Internal)));
            }
          });
        }
        this.notifyProgress();
      }
      if (this.inFlight.length > 0 || this.ready.length > 0 || this.open.size > 0) {
        error = toRiverlogError(new ConnectError("PublishStream ended with events unanswered", Code.Unknown));
      }
    } catch (err) {
      error = toRiverlogError(err);
    }
    if (error) {
      this.error = error;
      for (const batch of [...this.inFlight, ...this.ready, ...this.open.values()]) {
        batch.fail(error);
      }
      this.inFlight.length = 0;
      this.ready.length = 0;
      this.open.clear();
      this.buffered = 0;
      this.wake();
    }
    this.notifyProgress();
  }
}
