// The package's "prepare" script: builds dist/, first installing the locked
// dependencies into this folder's node_modules/ when they are missing.
//
// npm runs "prepare" after `npm install` / `npm ci` in this folder, before
// `npm pack` / `npm publish`, and in this folder when another project
// installs it as a folder (`npm install path/to/clients/typescript`). That
// last case is why the dependencies are installed here: npm only links the
// folder into the other project's node_modules/ and installs nothing for it,
// and Node resolves the linked package's own imports (@connectrpc/connect,
// ...) from the folder's real path, that is from here.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const needed = [...Object.keys(pkg.dependencies), "typescript", "@types/node"];
const missing = needed.filter((name) => !existsSync(join(root, "node_modules", name, "package.json")));

if (missing.length > 0) {
  console.error(`prepare: installing the locked dependencies into ${join(root, "node_modules")}`);
  // --ignore-scripts: `npm ci` would run this script again, and no dependency
  // needs its install script to build (buf's only shortcuts its binary lookup).
  // The npm that runs this script describes the installing project in
  // npm_config_* variables (local_prefix is that project's folder); the
  // nested npm must see this folder only.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^npm_(config_local_prefix|package_|lifecycle_|command$)/.test(key)),
  );
  const npmCli = process.env["npm_execpath"];
  const [command, args] = npmCli ? [process.execPath, [npmCli]] : ["npm", []];
  execFileSync(command, [...args, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], {
    cwd: root,
    env,
    stdio: ["ignore", 2, 2], // stdout too: `npm pack --json` prints its JSON there
  });
}

rmSync(join(root, "dist"), { recursive: true, force: true });
execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.json")], {
  cwd: root,
  stdio: ["ignore", 2, 2],
});
