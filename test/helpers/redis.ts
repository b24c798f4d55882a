/**
 * A real Redis server that the tests start themselves: Debian's redis-server 7
 * (`redis-server`, installed by .ci/run), never one that happens to be running.
 *
 * - One server: listening on 127.0.0.1 only, on a free port, in a temp folder of its own,
 *   with no persistence (no RDB snapshots, no append-only file) and `maxmemory-policy
 *   noeviction` (what BullMQ asks for). When the tests run as root (CI, this sandbox) it runs
 *   as Debian's `redis` user through `runuser`, and the folder is handed to that user.
 * - start waits for the server's own "Ready to accept connections" line, not for a time.
 * - stop() kills the server (by the pid it wrote) and removes its folder; a server still
 *   running when the process exits is stopped then too. `redisPerTest()` gives each test a
 *   server of its own (a few milliseconds to start: nothing is left over from another test).
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach } from "vitest";

export const REDIS_SERVER = "/usr/bin/redis-server";

export interface RedisServer {
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  /** Stops the server and removes its folder. Safe to call twice. */
  stop(): void;
}

/** Why no test server can start here, or undefined when one can. */
export function redisUnavailable(): string | undefined {
  if (!existsSync(REDIS_SERVER))
    return `${REDIS_SERVER} is absent (apt-get install redis-server; .ci/run installs it)`;
  return undefined;
}

/** True when the Redis tests cannot run here and may be skipped (never under CI=true). */
export function skipWithoutRedis(testName: string): boolean {
  const reason = redisUnavailable();
  const skip = reason !== undefined && !process.env.CI;
  if (skip) console.warn(`${testName}: skipped, ${reason}`);
  return skip;
}

/** Starts a new, empty server. */
export async function startRedis(): Promise<RedisServer> {
  const unavailable = redisUnavailable();
  if (unavailable) throw new Error(`cannot start Redis for the tests: ${unavailable}`);
  // The free port is found by binding port 0 and letting go of it: another process may take
  // it in between, so a failed start is tried again on another port.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(await freeLoopbackPort());
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
}

async function startOn(port: number): Promise<RedisServer> {
  const root = mkdtempSync(path.join(os.tmpdir(), "runflow-redis-"));
  if (isRoot()) execFileSync("chown", ["redis:redis", root]);
  const pidFile = path.join(root, "redis.pid");
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    root,
    "--pidfile",
    pidFile,
    "--save",
    "",
    "--appendonly",
    "no",
    "--maxmemory-policy",
    "noeviction",
    "--daemonize",
    "no",
    // The log to stdout, where start reads the ready line.
    "--logfile",
    "",
  ];
  const [command, commandArgs] = isRoot()
    ? ["runuser", ["-u", "redis", "--", REDIS_SERVER, ...args]]
    : [REDIS_SERVER, args];
  // The temp folder as working directory: the redis user may not enter the tests' one.
  const child = spawn(command, commandArgs, { cwd: os.tmpdir(), stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    process.off("exit", stop);
    const pid = readPid(pidFile);
    if (pid !== undefined) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    if (child.exitCode === null) child.kill("SIGKILL");
    rmSync(root, { recursive: true, force: true });
  };
  process.on("exit", stop);
  try {
    await new Promise<void>((resolve, reject) => {
      const seen = (chunk: Buffer): void => {
        log += chunk.toString();
        if (log.includes("Ready to accept connections")) resolve();
      };
      child.stdout.on("data", seen);
      child.stderr.on("data", seen);
      child.once("error", reject);
      child.once("exit", (code) =>
        reject(new Error(`redis-server exited (${code}) before it was ready:\n${log}`)),
      );
    });
  } catch (error) {
    stop();
    throw error;
  }
  // Its log is not needed any more; keep the pipes drained.
  child.stdout.resume();
  child.stderr.resume();
  return { url: `redis://127.0.0.1:${port}`, port, stop };
}

/** A Redis server of its own for every test of the file. Read `.url` inside a test. */
export function redisPerTest(): { readonly url: string } {
  let current: RedisServer | undefined;
  beforeEach(async () => {
    current = await startRedis();
  });
  afterEach(() => {
    current?.stop();
    current = undefined;
  });
  return {
    get url() {
      if (current === undefined) throw new Error("redisPerTest(): read .url inside a test");
      return current.url;
    },
  };
}

function readPid(pidFile: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
