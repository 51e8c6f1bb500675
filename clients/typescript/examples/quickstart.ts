import { Client, Code, RiverlogError } from "@riverlog/client";

const client = new Client(process.env["RIVERLOG_TARGET"] ?? "127.0.0.1:50051", {
  token: process.env["RIVERLOG_TOKEN"], // only needed when the server has [[auth.tokens]]
});

// Publish two CloudEvents to the stream `orders:eu` (created on first publish).
// Each gets its sequence in the stream and its global position.
const published = await client.publish("orders:eu", [
  { source: "/shop", type: "com.example.order.created", subject: "order-1", data: { total: 42 } },
  { source: "/shop", type: "com.example.order.created", subject: "order-2", data: { total: 7 } },
]);
const last = published[published.length - 1]!;
console.log("published", published.map((p) => `#${p.sequence}`).join(" "));

// Read the stream's history back, a page at a time.
const page = await client.read("orders:eu", { limit: 10 });
for (const event of page.events) {
  console.log(`read #${event.sequence} ${event.type} ${event.subject} ${event.text()}`);
}

// Subscribe to every `orders:` stream: the history, then live events. The
// iterator reconnects by itself and resumes right after the last event it gave.
for await (const event of client.subscribe("orders:*")) {
  console.log(`subscribed ${event.stream} #${event.sequence} ${event.subject}`);
  if (event.position === last.position) break;
}

// Share a stream's events among the consumers of a group: each delivery goes
// to one consumer and is delivered again unless acked.
try {
  await client.createGroup("orders:eu", "billing", { start: "latest" });
} catch (err) {
  if (!(err instanceof RiverlogError && err.code === Code.AlreadyExists)) throw err;
}
const [paid] = await client.publish("orders:eu", {
  source: "/shop", type: "com.example.order.paid", subject: "order-1",
});
for await (const delivery of client.consume("orders:eu", "billing", "worker-1")) {
  console.log(`consumed #${delivery.event.sequence} ${delivery.event.type} (delivery ${delivery.deliveryCount})`);
  await delivery.ack();
  if (delivery.event.sequence === paid!.sequence) break;
}

client.close();
