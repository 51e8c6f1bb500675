import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Client, RiverlogError, type Delivery } from "@riverlog/client";
import { Server, within } from "./server.js";

describe("ConsumerGroups", () => {
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

  test("consume, ack, and redelivery after nack", async () => {
    await client.publish("jobs", [
      { id: "j1", type: "job" },
      { id: "j2", type: "job" },
      { id: "j3", type: "job" },
    ]);
    const info = await client.createGroup("jobs", "workers", { ackTimeoutMs: 60_000 });
    assert.equal(info.group, "workers");
    assert.equal(info.lag, 3n);

    const seen: Array<[string, number]> = [];
    const consumer = client.consume("jobs", "workers", "w1", { maxInFlight: 10, heartbeatIntervalMs: 200 });
    const run = (async () => {
      for await (const delivery of consumer) {
        seen.push([delivery.event.id, delivery.deliveryCount]);
        if (delivery.event.id === "j2" && delivery.deliveryCount === 1) {
          assert.equal(await delivery.nack(), true); // redelivered at once
          continue;
        }
        assert.equal(delivery.sequence, delivery.event.sequence);
        assert.equal(await delivery.ack(), true);
        assert.equal(await delivery.ack(), false, "a second ack finds nothing pending");
        if (seen.length === 4) {
          break;
        }
      }
    })();
    await within(run, 15_000, "deliveries");
    assert.deepEqual(seen, [
      ["j1", 1],
      ["j2", 1],
      ["j3", 1],
      ["j2", 2],
    ]);
    const group = await client.getGroup("jobs", "workers");
    assert.equal(group.pending, 0n);
    assert.equal(group.ackFloor, 3n);
    assert.equal(group.lag, 0n);
  });

  test("fetch, listPending and nack with a delay", async () => {
    await client.publish("tasks", [{ id: "t1", type: "task" }]);
    await client.createGroup("tasks", "g");
    const [d] = (await client.fetch("tasks", "g", "c1", { count: 10 })) as [Delivery];
    assert.equal(d.event.id, "t1");
    const pending = await client.listPending("tasks", "g");
    assert.equal(pending.summary?.count, 1n);
    assert.equal(pending.entries[0]?.consumer, "c1");
    await d.nack({ delayMs: 300 });
    assert.equal((await client.fetch("tasks", "g", "c1")).length, 0, "not due before the delay");
    const [again] = (await client.fetch("tasks", "g", "c1", { blockMs: 3000 })) as [Delivery];
    assert.equal(again.event.id, "t1");
    assert.equal(again.deliveryCount, 2);
    await again.ack();
    assert.equal((await client.listPending("tasks", "g")).summary?.count, 0n);
  });

  test("consume on a missing group fails with its reason", async () => {
    const consumer = client.consume("jobs", "no-such-group", "w1");
    await assert.rejects(
      within(
        (async () => {
          for await (const _ of consumer) {
            // nothing
          }
        })(),
        10_000,
        "consume error",
      ),
      (err: unknown) => {
        assert.ok(err instanceof RiverlogError);
        assert.equal(err.codeName, "NOT_FOUND");
        assert.ok(err.reason, "has a reason");
        return true;
      },
    );
  });
});
