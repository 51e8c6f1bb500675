import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { test } from "node:test";
import { Client, type Event } from "@riverlog/client";
import { Server, waitFor, within } from "./server.js";

test("subscribe resumes across a server restart with no duplicates or gaps", async () => {
  let server = await Server.start();
  const { dir, port } = server;
  const client = new Client(server.target, { reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
  const reconnectErrors: string[] = [];
  const received: Event[] = [];
  let caughtUps = 0;
  try {
    for (let i = 1; i <= 5; i++) {
      await client.publish("resume:a", { id: `a${i}`, type: "t" });
      await client.publish("resume:b", { id: `b${i}`, type: "t" });
    }
    const subscription = client.subscribe("resume:*", {
      heartbeatIntervalMs: 200,
      onCaughtUp: () => caughtUps++,
      onReconnect: (err) => reconnectErrors.push(err.message),
    });
    const reader = (async () => {
      for await (const event of subscription) {
        received.push(event);
        if (received.length === 20) {
          break;
        }
      }
    })();
    await within(
      waitFor(() => received.length === 10 && caughtUps === 1, 10_000, "history"),
      15_000,
      "history",
    );

    // Restart the server on the same address and database.
    assert.equal(await server.stop(), 0);
    server = await Server.start({ dir, port });
    for (let i = 6; i <= 10; i++) {
      await client.publish("resume:a", { id: `a${i}`, type: "t" });
      await client.publish("resume:b", { id: `b${i}`, type: "t" });
    }
    await within(reader, 30_000, "events after the restart");

    assert.ok(subscription.reconnects >= 1, "the subscription reconnected");
    assert.ok(reconnectErrors.length >= 1);
    const ids = received.map((e) => e.id);
    assert.equal(new Set(ids).size, 20, `no duplicates: ${ids.join(",")}`);
    const positions = received.map((e) => e.position);
    for (let i = 1; i < positions.length; i++) {
      assert.ok(positions[i]! > positions[i - 1]!, "positions strictly increase");
    }
    for (const stream of ["resume:a", "resume:b"]) {
      const seqs = received.filter((e) => e.stream === stream).map((e) => e.sequence);
      assert.deepEqual(seqs, [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n, 10n], `no gaps in ${stream}`);
    }
  } finally {
    client.close();
    await server.close();
    // The restarted server reused the first one's directory without owning it.
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an event published while the server is down is not lost on resume", async () => {
  // The subscriber is live and idle when the server goes away; the next
  // server (same database) receives a publish before the subscriber is back.
  let server = await Server.start();
  const { dir, port } = server;
  const client = new Client(server.target, { reconnect: { initialDelayMs: 300, maxDelayMs: 300 } });
  const received: Event[] = [];
  try {
    await client.publish("gap", { id: "g1", type: "t" });
    const subscription = client.subscribe("gap", { start: "latest", heartbeatIntervalMs: 100 });
    const reader = (async () => {
      for await (const event of subscription) {
        received.push(event);
        if (received.length === 2) break;
      }
    })();
    await waitFor(() => subscription.caughtUp, 10_000, "caught up");
    await server.stop();
    server = await Server.start({ dir, port });
    const writer = new Client(server.target);
    await writer.publish("gap", [{ id: "g2", type: "t" }, { id: "g3", type: "t" }]);
    writer.close();
    await within(reader, 30_000, "events published during the outage");
    assert.deepEqual(
      received.map((e) => e.id),
      ["g2", "g3"],
    );
  } finally {
    client.close();
    await server.close();
    // The restarted server reused the first one's directory without owning it.
    rmSync(dir, { recursive: true, force: true });
  }
});
