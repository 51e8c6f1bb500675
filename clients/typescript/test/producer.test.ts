import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  Client,
  Code,
  EARLIER_BATCH_REFUSED,
  type EventInput,
  type Producer,
  type Published,
  RiverlogError,
} from "@riverlog/client";
import { authConfig, Server } from "./server.js";

const TOKEN = "producer-secret-token";

/** How a promise settled, caught at once (no unhandled rejection while the test awaits something else). */
async function outcome<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  try {
    return { value: await promise };
  } catch (error) {
    return { error };
  }
}

/** Sends `event` and returns the promise of where it lands. */
function published(producer: Producer, stream: string, event: EventInput): Promise<Published> {
  return producer.send(stream, event).then((pending) => pending.published);
}

/** The error a promise rejected with. */
async function rejection(settling: Promise<{ error?: unknown }>): Promise<RiverlogError> {
  const { error } = await settling;
  assert.ok(error instanceof RiverlogError, `expected a RiverlogError, got ${String(error)}`);
  return error;
}

describe("Producer", () => {
  let server: Server;
  let client: Client;

  before(async () => {
    server = await Server.start({
      config: authConfig([
        { name: "ingest", token: TOKEN, publish: ["orders:*", "p:*"], subscribe: ["*"], admin: true },
      ]),
    });
    client = new Client(server.target, { token: TOKEN });
  });

  after(async () => {
    client.close();
    await server.close();
  });

  test("every event resolves to its position, in send order, across streams", async () => {
    const producer = client.producer({ maxBatchEvents: 7, lingerMs: 20 });
    const sent = [];
    for (let i = 0; i < 100; i++) {
      sent.push(published(producer, i % 3 ? "p:order" : "p:order-other", { id: `e${i}`, type: "t" }));
    }
    await producer.close();
    const positions = await Promise.all(sent);
    assert.deepEqual(
      positions.map((p) => p.id),
      Array.from({ length: 100 }, (_, i) => `e${i}`),
    );
    const mine = positions.filter((_, i) => i % 3).map((p) => p.sequence);
    assert.deepEqual(
      mine,
      mine.map((_, i) => BigInt(i + 1)),
      "sequences follow send order",
    );
    const page = await client.read("p:order", { limit: 1000 });
    assert.deepEqual(
      page.events.map((e) => e.id),
      positions.filter((_, i) => i % 3).map((p) => p.id),
    );
  });

  test("a refused batch rejects its own events while the others commit", async () => {
    const producer = client.producer({ lingerMs: 10_000 });
    const before = published(producer, "p:mixed", { id: "before", type: "t" });
    await producer.flush();
    // One batch: a valid event and one without a type (invalid).
    const sameBatch = outcome(published(producer, "p:mixed", { id: "same-batch", type: "t" }));
    const invalid = outcome(published(producer, "p:mixed", { id: "bad", type: "" }));
    await producer.flush();
    const denied = outcome(published(producer, "payments:1", { id: "denied", type: "t" }));
    const after = published(producer, "p:mixed", { id: "after", type: "t" });
    await producer.close();

    assert.equal((await before).sequence, 1n);
    for (const refused of [sameBatch, invalid]) {
      const err = await rejection(refused);
      assert.equal(err.code, Code.InvalidArgument);
      assert.equal(err.codeName, "INVALID_ARGUMENT");
      assert.equal(err.reason, "INVALID_EVENT");
      assert.equal(err.domain, "riverlog.dev");
      assert.equal(err.metadata["index"], "1");
    }
    const err = await rejection(denied);
    assert.equal(err.code, Code.PermissionDenied);
    assert.equal(err.reason, "PERMISSION_DENIED");
    assert.equal(err.metadata["stream"], "payments:1");
    assert.equal((await after).sequence, 2n);
    const page = await client.read("p:mixed");
    assert.deepEqual(
      page.events.map((e) => e.id),
      ["before", "after"],
    );
  });

  test("an id the stream holds comes back as a duplicate", async () => {
    await client.publish("p:dup", { id: "a", type: "t" });
    const producer = client.producer();
    const dup = published(producer, "p:dup", { id: "a", type: "t" });
    await producer.close();
    const dupPublished = await dup;
    assert.equal(dupPublished.duplicate, true);
    assert.equal(dupPublished.sequence, 1n);
  });

  test("a failed call rejects what is unanswered and ends the producer", async () => {
    const stranger = new Client(server.target, { token: "wrong-token" });
    try {
      const producer = stranger.producer();
      const lost = outcome(published(producer, "orders:1", { type: "t" }));
      const isUnauthenticated = (err: unknown) => {
        assert.ok(err instanceof RiverlogError);
        assert.equal(err.code, Code.Unauthenticated);
        assert.equal(err.reason, "UNAUTHENTICATED");
        return true;
      };
      await assert.rejects(producer.flush(), isUnauthenticated);
      isUnauthenticated(await rejection(lost));
      await assert.rejects(producer.send("orders:1", { type: "t" }), isUnauthenticated);
      await producer.close();
    } finally {
      stranger.close();
    }
  });

  test("send resolves once queued, one waiting send per event answered, in call order", async () => {
    const maxBuffered = 3;
    const producer = client.producer({ maxBuffered, maxBatchEvents: 1, lingerMs: 0 });
    let queued = 0;
    let answered = 0;
    let mostUnanswered = 0;
    const sent: Array<Promise<Published>> = [];
    const sends = Array.from({ length: 50 }, (_, i) =>
      producer.send("p:bounded", { id: `b${i}`, type: "t" }).then(({ published }) => {
        queued += 1;
        mostUnanswered = Math.max(mostUnanswered, queued - answered);
        sent[i] = published.finally(() => {
          answered += 1;
        });
      }),
    );
    // Nothing answered yet: exactly maxBuffered sends are through.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(queued, maxBuffered);
    await Promise.all(sends);
    await producer.close();
    const positions = await Promise.all(sent);
    assert.deepEqual(
      positions.map((p) => p.sequence),
      positions.map((_, i) => BigInt(i + 1)),
      "queued in the order send was called",
    );
    assert.ok(mostUnanswered <= maxBuffered, `${mostUnanswered} events queued and unanswered`);
    await assert.rejects(
      producer.send("p:bounded", { type: "t" }),
      (err: unknown) => err instanceof RiverlogError && err.code === Code.FailedPrecondition && /closed/.test(err.message),
    );
  });

  test("a refused batch nobody observes before close does not crash Node", async () => {
    const producer = client.producer({ lingerMs: 10_000 });
    const { published: refused } = await producer.send("p:unobserved", { id: "bad", type: "" });
    // The refusal arrives while nothing handles it; an unhandled rejection
    // would fail this test (and crash a plain Node program).
    await producer.close();
    await new Promise((resolve) => setImmediate(resolve));
    const err = await rejection(outcome(refused));
    assert.equal(err.reason, "INVALID_EVENT");
  });

  test("flush waits only for the events sent before it", async () => {
    const producer = client.producer({ lingerMs: 60_000 });
    const { published: early } = await producer.send("p:flush", { id: "early", type: "t" });
    const flushed = producer.flush();
    const { published: late } = await producer.send("p:flush", { id: "late", type: "t" });
    let lateSettled = false;
    late.then(
      () => (lateSettled = true),
      () => (lateSettled = true),
    );
    await flushed;
    assert.equal((await early).sequence, 1n);
    assert.equal(lateSettled, false, "flush neither sent nor waited for a later event");
    await producer.close();
    assert.equal((await late).sequence, 2n);
  });

  test("after a refused batch the unsent batches of its stream reject unsent", async () => {
    const producer = client.producer({ maxBatchEvents: 2, lingerMs: 60_000 });
    const other = await producer.send("p:fence-other", { id: "other", type: "t" });
    // A full batch (goes out at once) with an invalid event, then one more
    // event of the stream, queued before the refusal can come back.
    const refused = [
      outcome((await producer.send("p:fence", { id: "a", type: "t" })).published),
      outcome((await producer.send("p:fence", { id: "bad", type: "" })).published),
    ];
    const unsent = outcome((await producer.send("p:fence", { id: "b", type: "t" })).published);
    for (const r of refused) {
      assert.equal((await rejection(r)).reason, "INVALID_EVENT");
    }
    const err = await rejection(unsent);
    assert.equal(err.reason, EARLIER_BATCH_REFUSED);
    assert.equal(err.code, Code.Aborted);
    assert.deepEqual(err.metadata, { stream: "p:fence", refused_reason: "INVALID_EVENT" });
    // Sent again, in order: it lands first.
    const retry = await producer.send("p:fence", { id: "b", type: "t" });
    await producer.close();
    assert.equal((await retry.published).sequence, 1n);
    assert.equal((await other.published).sequence, 1n, "other streams are not affected");
    const page = await client.read("p:fence");
    assert.deepEqual(
      page.events.map((e) => e.id),
      ["b"],
    );
  });

  test("a rate-limited batch says when to retry, as a unary publish does", async () => {
    const limited = await Server.start({ config: "publish_rate_limit = 1\npublish_burst = 3\n" });
    const slow = new Client(limited.target);
    try {
      const producer = slow.producer({ maxBatchEvents: 3 });
      const ok = await Promise.all([0, 1, 2].map((i) => published(producer, "p:rate", { id: `r${i}`, type: "t" })));
      assert.equal(ok.length, 3);
      const over = outcome(published(producer, "p:rate", { id: "over", type: "t" }));
      await producer.close();
      const err = await rejection(over);
      assert.equal(err.reason, "RATE_LIMITED");
      assert.ok(err.retryDelayMs !== undefined && err.retryDelayMs > 0, `retryDelayMs ${err.retryDelayMs}`);
      const unary = await rejection(outcome(slow.publish("p:rate", { id: "unary", type: "t" })));
      assert.ok(unary.retryDelayMs !== undefined && unary.retryDelayMs > 0);
    } finally {
      slow.close();
      await limited.close();
    }
  });
});
