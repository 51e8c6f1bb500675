import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { RiverlogError, toRiverlogError } from "./errors.js";
import { type EventInput, optionalDate, toCloudEvent } from "./events.js";
import { type CloudEvent, CloudEventSchema } from "./gen/riverlog/v1/cloudevent_pb.js";
import { ErrorInfoSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";
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
  /** Most events queued or in flight: `send` resolves only once one of them is answered when this many are. Default 20000. */
  maxBuffered?: number;
  /** `source` of events that set none. Default: the client's (`ClientOptions.source`). */
  source?: string;
}

/** One queued event, as {@link Producer.send} hands it back. */
export interface Pending {
  /**
   * Where the event landed, or the {@link RiverlogError} its batch was
   * refused with. Safe to leave unobserved until later (say, until after
   * `close()`): a rejection nobody has handled yet does not crash Node.
   */
  readonly published: Promise<Published>;
}

/** The `reason` of events rejected unsent because an earlier batch of their stream was refused (see {@link Producer}). */
export const EARLIER_BATCH_REFUSED = "EARLIER_BATCH_REFUSED";

interface Waiter {
  resolve: (p: Published) => void;
  reject: (e: RiverlogError) => void;
}

/** Events of one stream that go out as one request: one atomic publish. */
class Batch {
  readonly events: CloudEvent[] = [];
  readonly waiters: Waiter[] = [];
  bytes = 0;
  /** Whether every event of it is settled (what `flush` waits for). */
  done = false;
  constructor(
    readonly stream: string,
    /** When the batch goes out even if not full (`performance.now()` ms). */
    readonly deadline: number,
  ) {}

  fail(error: RiverlogError): void {
    for (const w of this.waiters) {
      w.reject(error);
    }
    this.done = true;
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
      ...(e.retryDelay ? [{ desc: RetryInfoSchema, value: { retryDelay: e.retryDelay } }] : []),
    ]),
  );
}

/** Why events of `stream` were not sent after a batch of it was refused. */
function earlierRefused(stream: string, refusal: RiverlogError): RiverlogError {
  return new RiverlogError(
    new ConnectError(
      `not sent: an earlier batch of stream ${JSON.stringify(stream)} was refused (${refusal.reason ?? refusal.codeName}); send these events again after it`,
      Code.Aborted,
      undefined,
      [
        {
          desc: ErrorInfoSchema,
          value: { reason: EARLIER_BATCH_REFUSED, metadata: { stream, refused_reason: refusal.reason ?? "" } },
        },
      ],
    ),
  );
}

/**
 * Publishes events in batches over one `PublishStream` call (see
 * `Client.producer`).
 *
 * `send` queues one event for a stream and resolves, once it is queued,
 * to a {@link Pending} whose `published` promise resolves to the event's
 * position, or rejects with the {@link RiverlogError} its batch was refused
 * with. While `maxBuffered` events are unanswered `send` resolves only as
 * answers free room, one waiting `send` per event answered, in the order
 * they were called: awaiting each `send` bounds the producer's memory.
 * Events of one stream are batched in the order sent; a batch goes out
 * when full, when its first event has waited `lingerMs`, or on `flush`.
 * Many batches are in flight on the one call; the server answers them in
 * order.
 *
 * A batch is one atomic publish: a refused batch (an invalid event, a
 * stream the token may not publish to, the rate limit) rejects every
 * event of it, while batches of other streams still commit. Batches of
 * the same stream not yet sent when the refusal arrives reject unsent
 * with reason `EARLIER_BATCH_REFUSED` (code ABORTED), so nothing queued
 * after the refused batch overtakes it; batches of that stream already
 * sent are answered as the server decides and may commit before a retry
 * of the refused one. Send the refused and the `EARLIER_BATCH_REFUSED`
 * events again, in order, to keep the stream in order. When the call itself
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
  /** Events queued or in flight, plus the places handed to waiting sends. */
  private buffered = 0;
  private closing = false;
  private error: RiverlogError | undefined;
  /** Wakes the request stream when a batch may be ready. */
  private wakeSender: (() => void) | undefined;
  /** Flushes, woken whenever answers arrive or the call ends. */
  private progress: Array<() => void> = [];
  /** Sends waiting for room, first come first served: each is woken with a place reserved (true), or false when the producer stops. */
  private roomWaiters: Array<(placed: boolean) => void> = [];
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

  /**
   * Queues `event` for `stream`; resolves once it is queued (waiting first
   * while `maxBuffered` events are unanswered) to its {@link Pending}.
   * Rejects with the call's error if the producer failed, and with a
   * `RiverlogError` (FAILED_PRECONDITION) once it is closed.
   */
  async send(stream: string, event: EventInput): Promise<Pending> {
    const message = toCloudEvent(event, this.source);
    if (!this.stopped()) {
      if (this.roomWaiters.length > 0 || this.buffered >= this.maxBuffered) {
        const placed = await new Promise<boolean>((resolve) => this.roomWaiters.push(resolve));
        if (placed && this.stopped()) {
          this.buffered = Math.max(0, this.buffered - 1); // the place goes unused
        }
      } else {
        this.buffered += 1;
      }
    }
    if (this.error) {
      throw this.error;
    }
    if (this.closing) {
      throw toRiverlogError(new ConnectError("the producer is closed", Code.FailedPrecondition));
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
    // Handled here too, so that a rejection the caller has not observed
    // yet is not an unhandled rejection; the caller still gets it.
    published.catch(() => {});
    batch.events.push(message);
    batch.bytes += size;
    if (batch.events.length >= this.maxEvents) {
      this.ready.push(batch);
      this.open.delete(stream);
    }
    this.wake();
    return { published };
  }

  /**
   * Sends every event queued so far now and waits until all of them are
   * answered; events sent meanwhile are not waited for. Throws the call's
   * error if the call failed; refusals of single batches are in their
   * events' promises.
   */
  async flush(): Promise<void> {
    const waiting = [...this.inFlight, ...this.ready, ...this.open.values()];
    this.ready.push(...this.open.values());
    this.open.clear();
    this.wake();
    while (waiting.some((b) => !b.done) && !this.error) {
      await this.nextProgress();
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
      this.wakeRoomWaiters();
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

  /** Gives back `events` places, waking as many waiting sends as there is room for. */
  private release(events: number): void {
    this.buffered -= events;
    while (this.buffered < this.maxBuffered && this.roomWaiters.length > 0) {
      this.buffered += 1;
      this.roomWaiters.shift()?.(true);
    }
  }

  /** Wakes every waiting send without a place: the producer stopped. */
  private wakeRoomWaiters(): void {
    const waiting = this.roomWaiters;
    this.roomWaiters = [];
    for (const resolve of waiting) {
      resolve(false);
    }
  }

  /** Takes the batches of `stream` not sent yet out of the queues. */
  private unsent(stream: string): Batch[] {
    const taken = this.ready.filter((b) => b.stream === stream);
    if (taken.length > 0) {
      const kept = this.ready.filter((b) => b.stream !== stream);
      this.ready.length = 0;
      this.ready.push(...kept);
    }
    const open = this.open.get(stream);
    if (open) {
      taken.push(open);
      this.open.delete(stream);
    }
    return taken;
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
          if (this.closing || batch.deadline <= now) {
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
        let freed = batch.waiters.length;
        if (answer.error) {
          const refusal = requestError(answer.error);
          batch.fail(refusal);
          for (const unsent of this.unsent(batch.stream)) {
            freed += unsent.waiters.length;
            unsent.fail(earlierRefused(batch.stream, refusal));
          }
        } else {
          batch.waiters.forEach((w, i) => {
            const position = answer.positions[i];
            if (position) {
              w.resolve(toPublished(position));
            } else {
              w.reject(toRiverlogError(new ConnectError("no position for this event", Code.Internal)));
            }
          });
          batch.done = true;
        }
        this.release(freed);
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
    this.wakeRoomWaiters();
    this.notifyProgress();
  }
}
