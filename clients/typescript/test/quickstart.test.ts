// The README's quick start is examples/quickstart.ts, verbatim: check that,
// then run the compiled example against a real server (twice: it must be
// re-runnable against the same server).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { test } from "node:test";
import { Server } from "./server.js";

const exec = promisify(execFile);
// dist/test/ -> package root
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

test("README shows examples/quickstart.ts verbatim", () => {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const example = readFileSync(join(root, "examples", "quickstart.ts"), "utf8");
  assert.ok(readme.includes("```ts\n" + example + "```\n"), "README's quick start block differs from examples/quickstart.ts");
});

test("the quick start runs against a real server", async () => {
  const server = await Server.start();
  try {
    for (let run = 1; run <= 2; run++) {
      const { stdout } = await exec(process.execPath, [join(root, "dist", "examples", "quickstart.js")], {
        env: { ...process.env, RIVERLOG_TARGET: server.target },
        timeout: 30_000,
      });
      const lines = stdout.trim().split("\n");
      const first = 3 * run - 2; // each run appends 3 events
      assert.equal(lines[0], `published #${first} #${first + 1}`);
      assert.ok(lines.includes(`read #1 com.example.order.created order-1 {"total":42}`), stdout);
      assert.ok(lines.includes(`subscribed orders:eu #${first + 1} order-2`), stdout);
      // The group starts at "latest" on the first run; the second run also
      // gets the two events that run published before its paid event.
      const consumed = lines.filter((l) => l.startsWith("consumed"));
      assert.deepEqual(
        consumed,
        run === 1
          ? ["consumed #3 com.example.order.paid (delivery 1)"]
          : [
              "consumed #4 com.example.order.created (delivery 1)",
              "consumed #5 com.example.order.created (delivery 1)",
              "consumed #6 com.example.order.paid (delivery 1)",
            ],
        stdout,
      );
    }
  } finally {
    await server.close();
  }
});
