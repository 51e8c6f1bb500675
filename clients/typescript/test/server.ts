// Starts a real riverlog server for the tests.
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const RIVERLOG_BIN = process.env["RIVERLOG_BIN"] || "/tmp/riverlog-bin/riverlog";

export interface ServerOptions {
  /** Data directory to reuse (restart on the same database); a new one by default. */
  dir?: string;
  /** gRPC port to listen on (restart on the same address); 0 picks one. */
  port?: number;
  /** TOML config file contents. */
  config?: string;
}

export class Server {
  stderr = "";
  private exited: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    readonly dir: string,
    readonly port: number,
    private readonly ownsDir: boolean,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null) {
        resolve(child.exitCode);
      } else {
        child.once("exit", (code) => resolve(code));
      }
    });
  }

  /** `host:port` of the gRPC listener. */
  get target(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async start(options: ServerOptions = {}): Promise<Server> {
    const ownsDir = options.dir === undefined;
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), "riverlog-ts-"));
    const args = [
      "serve",
      "--listen",
      `127.0.0.1:${options.port ?? 0}`,
      "--http-listen",
      "127.0.0.1:0",
      "--database-url",
      `sqlite://${join(dir, "r.db")}`,
    ];
    if (options.config !== undefined) {
      const path = join(dir, "riverlog.toml");
      writeFileSync(path, options.config);
      args.push("--config", path);
    }
    const child = spawn(RIVERLOG_BIN, args, { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`riverlog did not start in 30 s:\n${log}`));
      }, 30_000);
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`riverlog exited with ${code}:\n${log}`));
      });
      // Keep draining stderr for the whole life of the process.
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (chunk: string) => {
        log += chunk;
        const match = /grpc=127\.0\.0\.1:(\d+)/.exec(log);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
    });
    child.removeAllListeners("exit");
    const server = new Server(child, dir, port, ownsDir);
    server.stderr = log;
    child.stderr!.on("data", (chunk: string) => {
      server.stderr += chunk;
    });
    return server;
  }

  /** SIGTERM and wait for a clean exit. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGTERM");
    }
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 15_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  /** Stops and removes the data directory (if this server created it). */
  async close(): Promise<void> {
    await this.stop();
    if (this.ownsDir) {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** The TOML for token auth: `[[auth.tokens]]` entries with the token's sha256. */
export function authConfig(
  tokens: Array<{ name: string; token: string; publish?: string[]; subscribe?: string[]; admin?: boolean }>,
): string {
  const list = (xs: string[] | undefined) => `[${(xs ?? []).map((x) => JSON.stringify(x)).join(", ")}]`;
  return tokens
    .map(
      (t) => `[[auth.tokens]]
name = ${JSON.stringify(t.name)}
sha256 = "${createHash("sha256").update(t.token).digest("hex")}"
publish = ${list(t.publish)}
subscribe = ${list(t.subscribe)}
admin = ${t.admin ? "true" : "false"}
`,
    )
    .join("\n");
}

/** Resolves when `predicate` holds, polling every 20 ms; rejects after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Races a promise against a timeout, so a broken stream fails the test instead of hanging it. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
