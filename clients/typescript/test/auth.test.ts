import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Client, Code, RiverlogError } from "@riverlog/client";
import { authConfig, Server, within } from "./server.js";

const INGEST_TOKEN = "ingest-secret-token";

describe("token auth", () => {
  let server: Server;

  before(async () => {
    server = await Server.start({
      config: authConfig([
        { name: "ingest", token: INGEST_TOKEN, publish: ["orders:*"], subscribe: ["orders:*"], admin: false },
      ]),
    });
  });

  after(async () => {
    await server.close();
  });

  test("UNAUTHENTICATED without a token or with a wrong one", async () => {
    for (const token of [undefined, "wrong-token"]) {
      const client = new Client(server.target, token === undefined ? {} : { token });
      try {
        await assert.rejects(client.publish("orders:1", { type: "t" }), (err: unknown) => {
          assert.ok(err instanceof RiverlogError);
          assert.equal(err.code, Code.Unauthenticated);
          assert.equal(err.reason, "UNAUTHENTICATED");
          return true;
        });
      } finally {
        client.close();
      }
    }
  });

  test("a token publishes and subscribes within its grants", async () => {
    const client = new Client(server.target, { token: INGEST_TOKEN });
    try {
      const [p] = await client.publish("orders:1", { id: "o1", type: "order.created" });
      assert.equal(p?.sequence, 1n);
      const events: string[] = [];
      for await (const e of client.subscribe("orders:*")) {
        events.push(e.id);
        break;
      }
      assert.deepEqual(events, ["o1"]);
      await assert.rejects(client.publish("payments:1", { type: "t" }), (err: unknown) => {
        assert.ok(err instanceof RiverlogError);
        assert.equal(err.code, Code.PermissionDenied);
        assert.equal(err.reason, "PERMISSION_DENIED");
        return true;
      });
      // A subscription that is refused does not retry forever.
      await assert.rejects(
        within(
          (async () => {
            for await (const _ of client.subscribe("payments:1")) {
              // nothing
            }
          })(),
          10_000,
          "subscription refusal",
        ),
        (err: unknown) => err instanceof RiverlogError && err.reason === "PERMISSION_DENIED",
      );
    } finally {
      client.close();
    }
  });
});
