import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Client, Code, RiverlogError } from "@riverlog/client";
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
      sent.push(producer.send(i % 3 ? "p:order" : "p:order-other", { id: `e${i}`, type: "t" }));
    }
    await producer.close();
    const published = await Promise.all(sent);
    assert.deepEqual(
      published.map((p) => p.id),
      Array.from({ length: 100 }, (_, i) => `e${i}`),
    );
    const mine = published.filter((_, i) => i % 3).map((p) => p.sequence);
    assert.deepEqual(
      mine,
      mine.map((_, i) => BigInt(i + 1)),
      "sequences follow send order",
    );
    const page = await client.read("p:order", { limit: 1000 });
    assert.deepEqual(
      page.events.map((e) => e.id),
      published.filter((_, i) => i % 3).map((p) => p.id),
    );
  });

  test("a refused batch rejects its own events while the others commit", async () => {
    const producer = client.producer({ lingerMs: 10_000 });
    const before = producer.send("p:mixed", { id: "before", type: "t" });
    await producer.flush();
    // One batch: a valid event and one without a type (invalid).
    const sameBatch = outcome(producer.send("p:mixed", { id: "same-batch", type: "t" }));
    const invalid = outcome(producer.send("p:mixed", { id: "bad", type: "" }));
    await producer.flush();
    const denied = outcome(producer.send("payments:1", { id: "denied", type: "t" }));
    const after = producer.send("p:mixed", { id: "after", type: "t" });
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
    const dup = producer.send("p:dup", { id: "a", type: "t" });
    await producer.close();
    const published = await dup;
    assert.equal(published.duplicate, true);
    assert.equal(published.sequence, 1n);
  });

  test("a failed call rejects what is unanswered and ends the producer", async () => {
    const stranger = new Client(server.target, { token: "wrong-token" });
    try {
      const producer = stranger.producer();
      const lost = outcome(producer.send("orders:1", { type: "t" }));
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

  test("send waits while maxBuffered events are unanswered", async () => {
    const producer = client.producer({ maxBuffered: 10, maxBatchEvents: 4 });
    const sent = [];
    for (let i = 0; i < 200; i++) {
      sent.push(producer.send("p:bounded", { type: "t" }));
    }
    await producer.close();
    const published = await Promise.all(sent);
    assert.deepEqual(
      published.map((p) => p.sequence),
      published.map((_, i) => BigInt(i + 1)),
    );
    await assert.rejects(producer.send("p:bounded", { type: "t" }), /closed/);
  });
});
