// The two installs the README gives, each into a fresh consumer project and
// each from a fresh copy of this package (no node_modules/, no dist/: a clean
// checkout): a tarball made by `npm pack`, and the folder itself
// (`npm install <folder>`, which npm links, then runs `prepare` in). In each
// consumer a TypeScript program importing "@riverlog/client" is compiled
// against the installed types and run: one publish and one read against a
// real server.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { Server } from "./server.js";

const execFileAsync = promisify(execFile);
// dist/test/ -> package root
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

// Without the npm_* variables of an enclosing `npm test`: they describe that
// run's project, not the consumer's.
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("npm_")));

async function run(command: string, args: string[], cwd: string, extraEnv: Record<string, string> = {}): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, {
      cwd,
      env: { ...env, ...extraEnv },
      maxBuffer: 16 * 1024 * 1024,
      timeout: 300_000,
    });
    return stdout;
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(" ")} (in ${cwd}) failed:\n${stdout ?? ""}\n${stderr ?? ""}`, { cause: err });
  }
}

const npm = (args: string[], cwd: string) => run("npm", [...args, "--no-audit", "--no-fund"], cwd);

/** A copy of the package as a clean checkout has it. */
function freshCopy(dest: string): string {
  cpSync(root, dest, {
    recursive: true,
    filter: (src) => !["node_modules", "dist"].includes(basename(src)) && !src.endsWith(".tgz"),
  });
  return dest;
}

/**
 * An empty ES-module project holding test/install-consumer/main.ts, set up to
 * compile it the way the README says (lib DOM), with this package's
 * @types/node for Node's and Connect's node types.
 */
function consumer(dir: string, name: string): string {
  const project = join(dir, name);
  cpSync(join(root, "test", "install-consumer"), project, { recursive: true });
  writeFileSync(join(project, "package.json"), JSON.stringify({ name, private: true, type: "module" }, null, 2));
  const compilerOptions = {
    target: "ES2022",
    lib: ["ES2022", "DOM"],
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    types: ["node"],
    typeRoots: [join(root, "node_modules", "@types")],
  };
  writeFileSync(join(project, "tsconfig.json"), JSON.stringify({ compilerOptions, files: ["main.ts"] }, null, 2));
  return project;
}

/** Compiles the consumer's main.ts with this package's tsc and runs it against `target`. */
async function compileAndRun(project: string, target: string, label: string): Promise<string> {
  await run(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", project], project);
  return run(process.execPath, [join(project, "main.js"), label], project, { RIVERLOG_TARGET: target });
}

describe("installing the package", () => {
  let server: Server;
  let dir: string;

  before(async () => {
    server = await Server.start();
    dir = mkdtempSync(join(tmpdir(), "riverlog-ts-install-"));
  });

  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("from the tarball of `npm pack`", async () => {
    // `npm pack` runs prepare: installs the locked dependencies, builds dist/.
    const source = freshCopy(join(dir, "pack-source"));
    const tarballs = join(dir, "tarballs");
    mkdirSync(tarballs);
    await npm(["pack", "--pack-destination", tarballs], source);
    const [tarball] = readdirSync(tarballs);
    assert.equal(tarball, "riverlog-client-0.1.0.tgz");

    const project = consumer(dir, "tarball-consumer");
    await npm(["install", join(tarballs, tarball!)], project);
    const installed = join(project, "node_modules", "@riverlog", "client");
    assert.ok(lstatSync(installed).isDirectory(), "a copy, not a link");
    assert.ok(existsSync(join(installed, "dist", "src", "index.js")));
    // Its dependencies are the consumer's own.
    assert.ok(existsSync(join(project, "node_modules", "@connectrpc", "connect-node", "package.json")));

    const out = await compileAndRun(project, server.target, "tarball");
    assert.match(out, /^round trip: install:tarball #1$/m);
  });

  test("from the folder (npm links it and runs prepare there)", async () => {
    const source = freshCopy(join(dir, "folder-source"));
    const project = consumer(dir, "folder-consumer");
    await npm(["install", source], project);
    const installed = join(project, "node_modules", "@riverlog", "client");
    assert.ok(lstatSync(installed).isSymbolicLink(), "npm links a folder");
    assert.equal(realpathSync(installed), realpathSync(source));
    // prepare built dist/ and installed the dependencies in the folder, where
    // Node resolves them from (the link's real path); the consumer has none.
    assert.ok(existsSync(join(source, "dist", "src", "index.js")));
    assert.ok(existsSync(join(source, "node_modules", "@connectrpc", "connect-node", "package.json")));
    assert.ok(!existsSync(join(project, "node_modules", "@connectrpc")));

    const out = await compileAndRun(project, server.target, "folder");
    assert.match(out, /^round trip: install:folder #1$/m);
  });
});
