import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Client, Code, RiverlogError, type Event } from "@riverlog/client";
import { Server, within } from "./server.js";

describe("EventLog", () => {
  let server: Server;
  let client: Client;

  before(async () => {
    server = await Server.start();
    client = new Client(server.target);
  });

  after(async () => {
    client.close();
    await server.close();
  });

  test("publish and read round trip", async () => {
    const time = new Date("2024-05-01T12:00:00.123Z");
    const published = await client.publish("orders:eu", [
      {
        id: "order-1",
        source: "/shop",
        type: "com.example.order.created",
        subject: "order-1",
        time,
        data: { total: 42 },
        attributes: { tenant: "acme", priority: 3, urgent: true, ref: { uri: "https://example.com/o/1" } },
      },
      { id: "order-2", source: "/shop", type: "com.example.order.created", data: "plain text" },
      { id: "order-3", source: "/shop", type: "com.example.order.paid", data: new Uint8Array([0, 1, 255]) },
    ]);
    assert.equal(published.length, 3);
    assert.deepEqual(
      published.map((p) => [p.id, p.sequence, p.duplicate]),
      [
        ["order-1", 1n, false],
        ["order-2", 2n, false],
        ["order-3", 3n, false],
      ],
    );
    assert.ok(published[0]!.position < published[1]!.position);
    assert.ok(published[0]!.recordedAt instanceof Date);

    const page = await client.read("orders:eu");
    assert.equal(page.endOfStream, true);
    assert.equal(page.nextSequence, 4n);
    assert.equal(page.events.length, 3);
    const [e1, e2, e3] = page.events as [Event, Event, Event];
    assert.equal(e1.stream, "orders:eu");
    assert.equal(e1.id, "order-1");
    assert.equal(e1.source, "/shop");
    assert.equal(e1.specVersion, "1.0");
    assert.equal(e1.type, "com.example.order.created");
    assert.equal(e1.subject, "order-1");
    assert.equal(e1.time?.toISOString(), time.toISOString());
    assert.equal(e1.datacontenttype, "application/json");
    assert.deepEqual(e1.json(), { total: 42 });
    assert.equal(e1.attributes["tenant"], "acme");
    assert.equal(e1.attributes["priority"], 3);
    assert.equal(e1.attributes["urgent"], true);
    assert.equal(e1.attributes["ref"], "https://example.com/o/1");
    assert.equal(e1.position, published[0]!.position);
    assert.equal(e2.text(), "plain text");
    assert.equal(e2.subject, undefined);
    // Compare bytes, not classes: over a gzip-compressed response the
    // runtime may hand back a Buffer (a Uint8Array subclass).
    assert.ok(e3.data instanceof Uint8Array);
    assert.deepEqual(Array.from(e3.data), [0, 1, 255]);

    // Backwards, one per page, and the paging iterator.
    const back = await client.read("orders:eu", { direction: "backward", limit: 1 });
    assert.deepEqual(back.events.map((e) => e.id), ["order-3"]);
    assert.equal(back.nextSequence, 2n);
    const all: string[] = [];
    for await (const e of client.readAll("orders:eu", { limit: 2 })) {
      all.push(e.id);
    }
    assert.deepEqual(all, ["order-1", "order-2", "order-3"]);
    const filtered = await client.read("orders:eu", { filter: { types: ["com.example.order.paid"] } });
    assert.deepEqual(filtered.events.map((e) => e.id), ["order-3"]);

    const info = await client.getStream("orders:eu");
    assert.equal(info.lastSequence, 3n);
    assert.equal(info.eventCount, 3n);
  });

  test("a repeated event id is flagged duplicate", async () => {
    const first = await client.publish("dup", { id: "same", type: "t.created", data: "a" });
    assert.equal(first[0]!.duplicate, false);
    const again = await client.publish("dup", [
      { id: "same", type: "t.created", data: "a" },
      { id: "other", type: "t.created", data: "b" },
    ]);
    assert.equal(again[0]!.duplicate, true);
    assert.equal(again[0]!.sequence, first[0]!.sequence);
    assert.equal(again[0]!.position, first[0]!.position);
    assert.equal(again[1]!.duplicate, false);
    assert.equal(again[1]!.sequence, 2n);
    const page = await client.read("dup");
    assert.deepEqual(page.events.map((e) => e.id), ["same", "other"]);
  });

  test("errors carry the ErrorInfo reason", async () => {
    await assert.rejects(client.getStream("no-such-stream"), (err: unknown) => {
      assert.ok(err instanceof RiverlogError);
      assert.equal(err.code, Code.NotFound);
      assert.equal(err.codeName, "NOT_FOUND");
      assert.equal(err.reason, "STREAM_NOT_FOUND");
      assert.equal(err.domain, "riverlog.dev");
      return true;
    });
    await assert.rejects(client.read("no-such-stream"), (err: unknown) => {
      assert.ok(err instanceof RiverlogError);
      assert.equal(err.reason, "STREAM_NOT_FOUND");
      return true;
    });

    await client.publish("occ", [{ type: "t.a" }, { type: "t.b" }], { expectedLastSequence: 0 });
    await assert.rejects(
      client.publish("occ", { type: "t.c" }, { expectedLastSequence: 1 }),
      (err: unknown) => {
        assert.ok(err instanceof RiverlogError);
        assert.equal(err.code, Code.FailedPrecondition);
        assert.equal(err.reason, "WRONG_EXPECTED_SEQUENCE");
        return true;
      },
    );
    await assert.rejects(client.publish("occ", { type: "t.c" }, { expectedState: "no_stream" }), (err: unknown) => {
      assert.ok(err instanceof RiverlogError);
      assert.equal(err.reason, "WRONG_EXPECTED_SEQUENCE");
      return true;
    });
    const ok = await client.publish("occ", { type: "t.c" }, { expectedLastSequence: 2 });
    assert.equal(ok[0]!.sequence, 3n);

    await assert.rejects(client.publish("bad name!", { type: "t" }), (err: unknown) => {
      assert.ok(err instanceof RiverlogError);
      assert.equal(err.code, Code.InvalidArgument);
      assert.equal(err.reason, "INVALID_STREAM_NAME");
      return true;
    });
  });

  test("subscribe delivers history, then caught-up, then live events", async () => {
    await client.publish("sub:a", [
      { id: "h1", type: "t" },
      { id: "h2", type: "t" },
    ]);
    await client.publish("sub:b", { id: "h3", type: "t" });
    await client.publish("other", { id: "x", type: "t" });

    const log: string[] = [];
    const subscription = client.subscribe("sub:*", {
      onCaughtUp: () => log.push("caught-up"),
      heartbeatIntervalMs: 200,
    });
    const received: Event[] = [];
    const done = (async () => {
      for await (const event of subscription) {
        log.push(event.id);
        received.push(event);
        if (received.length === 3) {
          // History is delivered; publish live events now.
          await client.publish("sub:b", { id: "l1", type: "t" });
          await client.publish("sub:c", { id: "l2", type: "t" }); // a stream created after subscribing
        }
        if (received.length === 5) {
          break;
        }
      }
    })();
    await within(done, 15_000, "subscription events");
    assert.deepEqual(log, ["h1", "h2", "h3", "caught-up", "l1", "l2"]);
    assert.deepEqual(
      received.map((e) => e.stream),
      ["sub:a", "sub:a", "sub:b", "sub:b", "sub:c"],
    );
    for (let i = 1; i < received.length; i++) {
      assert.ok(received[i]!.position > received[i - 1]!.position);
    }
    assert.equal(subscription.lastPosition, received[4]!.position);
    assert.equal(subscription.reconnects, 0);

    // Starting at a position skips what came before it.
    const from = client.subscribe(["sub:a", "sub:b", "sub:c"], { start: { position: received[3]!.position } });
    const ids: string[] = [];
    for await (const e of from) {
      ids.push(e.id);
      if (ids.length === 2) break;
    }
    assert.deepEqual(ids, ["l1", "l2"]);
  });

  test("subscribe fails fast on a non-transient error", async () => {
    const subscription = client.subscribe("bad name!");
    await assert.rejects(
      within(
        (async () => {
          for await (const _ of subscription) {
            // nothing
          }
        })(),
        10_000,
        "subscription error",
      ),
      (err: unknown) => {
        assert.ok(err instanceof RiverlogError);
        assert.equal(err.code, Code.InvalidArgument);
        return true;
      },
    );
  });

  test("close() and an AbortSignal end an idle subscription", async () => {
    const subscription = client.subscribe("idle:*", { heartbeatIntervalMs: 100 });
    const ended = (async () => {
      let n = 0;
      for await (const _ of subscription) n++;
      return n;
    })();
    setTimeout(() => subscription.close(), 300);
    assert.equal(await within(ended, 5_000, "close()"), 0);
    assert.equal(subscription.caughtUp, true);

    const controller = new AbortController();
    const consumer = client.consume("jobs-idle", "g", "c", { signal: controller.signal });
    await client.publish("jobs-idle", { type: "t" }).then(() => client.createGroup("jobs-idle", "g", { start: "latest" }));
    const stopped = (async () => {
      for await (const _ of consumer) {
        // nothing arrives
      }
    })();
    setTimeout(() => controller.abort(), 300);
    await within(stopped, 5_000, "abort");
  });
});
