// A consumer's program (test/install.test.ts copies it into a fresh project
// that installed the package): one publish and one read.
//   node main.js LABEL    with RIVERLOG_TARGET=host:port
import { Client, RiverlogError, type Published } from "@riverlog/client";

const label = process.argv[2] ?? "consumer";
const client = new Client(process.env["RIVERLOG_TARGET"] ?? "127.0.0.1:50051");
try {
  const stream = `install:${label}`;
  const published: Published[] = await client.publish(stream, {
    source: "/install-test",
    type: "com.example.installed",
    data: { via: label },
  });
  const page = await client.read(stream);
  const [event] = page.events;
  if (page.events.length !== 1 || event === undefined || event.sequence !== published[0]?.sequence) {
    throw new Error(`read back ${page.events.length} events, expected the one published`);
  }
  const data = event.json() as { via?: string };
  if (data.via !== label) {
    throw new Error(`read back data ${event.text()}`);
  }
  console.log(`round trip: ${stream} #${event.sequence}`);
} catch (err) {
  console.error(err instanceof RiverlogError ? `${err.codeName} ${err.reason}: ${err.message}` : err);
  process.exitCode = 1;
} finally {
  client.close();
}
