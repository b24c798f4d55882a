import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import ts from "typescript";
import { afterAll, afterEach } from "vitest";
import {
  openSqliteStore,
  type NewRun,
  type NewStep,
  type SqliteStore,
  type SqliteStoreOptions,
} from "../src/store/index.js";

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const tempDirs: string[] = [];
const openStores: SqliteStore[] = [];

afterEach(() => {
  for (const store of openStores.splice(0)) store.close();
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "runflow-store-"));
  tempDirs.push(dir);
  return dir;
}

/** A fresh database file in its own temp folder. */
export function tempDbPath(): string {
  return path.join(tempDir(), "state", "runflow.db");
}

/** Opens a store that is closed after the test. */
export function open(dbPath: string, options?: SqliteStoreOptions): SqliteStore {
  const store = openSqliteStore(dbPath, { secrets: [], ...options });
  openStores.push(store);
  return store;
}

/** The API origin the runs newRun makes were made at. */
export const TEST_ORIGIN = "https://api.example";

export function newRun(overrides: Partial<NewRun> = {}): NewRun {
  return {
    id: "run-1",
    workflowName: "teasers",
    workflowFile: "teasers.yaml",
    kind: "apply",
    plan: { steps: ["teaser/cat/animate"] },
    options: { concurrency: 4 },
    startedAt: 1_000,
    pid: process.pid,
    hostname: "host-a",
    apiOrigin: TEST_ORIGIN,
    ...overrides,
  };
}

export function modelStep(address: string, overrides: Partial<NewStep> = {}): NewStep {
  const [jobId = "", instanceKey = "", stepId = ""] = address.split("/");
  return {
    address,
    jobId,
    instanceKey,
    stepId,
    kind: "model",
    model: "minimax/Hailuo Video 01 Live",
    state: "pending",
    fingerprint: `fp-${address}`,
    input: { prompt: `prompt of ${address}`, image_url: "https://media.example/cat.png" },
    ...overrides,
  };
}

/** A run with the given model steps, created in `store`. */
export function seedRun(store: SqliteStore, run: Partial<NewRun>, addresses: readonly string[]): NewRun {
  const created = newRun(run);
  store.createRun(created);
  store.insertSteps(
    created.id,
    addresses.map((a) => modelStep(a)),
    created.startedAt,
  );
  return created;
}

// ---------------------------------------------------------------------------------------
// Child processes that use the real store code, to test what happens across processes.
// Node 20 cannot run TypeScript, so the store's sources are transpiled (types stripped,
// nothing else changed) into a temp folder once per test file.

let compiledStoreUrl: string | undefined;
let compiledStoreFolder: string | undefined;
// The test file's children are done with it by then (vitest's workers never emit "exit").
afterAll(() => {
  if (compiledStoreFolder) rmSync(compiledStoreFolder, { recursive: true, force: true });
  compiledStoreFolder = undefined;
  compiledStoreUrl = undefined;
});

function compileStoreForChildren(): string {
  if (compiledStoreUrl) return compiledStoreUrl;
  const outDir = mkdtempSync(path.join(os.tmpdir(), "runflow-store-child-"));
  const require = createRequire(import.meta.url);
  const sqliteUrl = pathToFileURL(require.resolve("better-sqlite3")).href;
  const pgUrl = pathToFileURL(require.resolve("pg")).href;
  const sources = [
    "src/errors.ts",
    // The budget's rule, which both adapters apply (store/budget-ledger.ts).
    "src/cost/budget.ts",
    ...readdirSync(path.join(projectRoot, "src/store"))
      .filter((f) => f.endsWith(".ts"))
      .map((f) => `src/store/${f}`),
  ];
  for (const source of sources) {
    const { outputText } = ts.transpileModule(readFileSync(path.join(projectRoot, source), "utf8"), {
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
      },
    });
    const target = path.join(outDir, source.replace(/\.ts$/, ".js"));
    mkdirSync(path.dirname(target), { recursive: true });
    // The temp folder has no node_modules: point the bare imports at the project's copies.
    writeFileSync(
      target,
      outputText
        .replace(/from "better-sqlite3"/g, `from ${JSON.stringify(sqliteUrl)}`)
        .replace(/from "pg"/g, `from ${JSON.stringify(pgUrl)}`),
    );
  }
  compiledStoreFolder = outDir;
  compiledStoreUrl = pathToFileURL(path.join(outDir, "src/store/sqlite.js")).href;
  return compiledStoreUrl;
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface StoreChild {
  pid: number;
  /** Resolves with the first line the child prints. */
  firstLine: Promise<string>;
  /** Closes the child's stdin (the script may wait for that) and resolves when it has exited. */
  finish(): Promise<ChildResult>;
  exited: Promise<ChildResult>;
}

/**
 * Runs `body` in a new Node process, as the body of an async function that has `store`
 * (the real SqliteStore opened on `dbPath`), `args` and `waitForStdinEnd()` in scope.
 */
export function spawnStoreChild(dbPath: string, body: string, args: unknown = null): StoreChild {
  return spawnChild(
    `import { openSqliteStore } from ${JSON.stringify(compileStoreForChildren())};
     const store = openSqliteStore(${JSON.stringify(dbPath)});`,
    body,
    args,
  );
}

/**
 * The same with `store` the port's SQLite adapter (sqlite-state-store.ts) opened on
 * `dbPath`: what the store conformance suite runs in a process it kills.
 */
export function spawnStateStoreChild(dbPath: string, body: string, args: unknown = null): StoreChild {
  const adapterUrl = new URL("sqlite-state-store.js", compileStoreForChildren()).href;
  return spawnChild(
    `import { openSqliteStateStore } from ${JSON.stringify(adapterUrl)};
     const store = await openSqliteStateStore(${JSON.stringify(dbPath)}, { secrets: [] });`,
    body,
    args,
  );
}

/** The same with `store` the port's PostgreSQL adapter (postgres-state-store.ts) opened on `url`. */
export function spawnPostgresStateStoreChild(url: string, body: string, args: unknown = null): StoreChild {
  const adapterUrl = new URL("postgres-state-store.js", compileStoreForChildren()).href;
  return spawnChild(
    `import { openPostgresStateStore } from ${JSON.stringify(adapterUrl)};
     const store = await openPostgresStateStore(${JSON.stringify(url)}, { secrets: [] });`,
    body,
    args,
  );
}

function spawnChild(opening: string, body: string, args: unknown): StoreChild {
  const script = `
    ${opening}
    const args = JSON.parse(process.env.STORE_CHILD_ARGS);
    const waitForStdinEnd = () => new Promise((resolve) => { process.stdin.on("end", resolve); process.stdin.resume(); });
    await (async () => { ${body} })();
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, STORE_CHILD_ARGS: JSON.stringify(args) },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  const firstLine = new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (chunk: string) => {
      stdout += chunk;
      const newline = stdout.indexOf("\n");
      if (newline >= 0) resolve(stdout.slice(0, newline));
    });
    child.on("close", () => reject(new Error(`child exited before printing a line; stderr: ${stderr}`)));
  });
  // A test that only waits for the exit must not fail on the unobserved rejection above.
  firstLine.catch(() => {});
  child.stderr.on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<ChildResult>((resolve) => {
    // "close", not "exit": the child's output is complete only once its pipes have closed.
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    pid: child.pid ?? -1,
    firstLine,
    exited,
    finish: () => {
      child.stdin.end();
      return exited;
    },
  };
}
