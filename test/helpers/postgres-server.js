// A private PostgreSQL server on loopback, started on demand: Debian's PostgreSQL 15
// (`postgresql`, installed by .ci/run), never one that happens to be running. Plain
// JavaScript so that both the tests (test/helpers/postgres.ts adds vitest's parts) and the
// benchmarks (bench/cluster.js, which runs on node without a TypeScript step) start it the
// same way; its types are in postgres-server.d.ts.
//
// - One server: a fresh cluster in a temp folder, listening on 127.0.0.1 only, on a free
//   port, with its Unix socket inside that folder; the superuser `runflow` with trust auth
//   (loopback only, a throwaway cluster). PostgreSQL refuses to run as root, so when the
//   caller runs as root (CI, this sandbox) every server command runs as the `postgres` user
//   through `runuser`, and the folder is handed to that user.
// - fsync stays on (PostgreSQL's default, set explicitly): the crash tests of issue 12 must
//   mean what they say, and the benchmarks measure a server that behaves as a production one.
// - Fast start: initdb runs once and its cluster is kept as a template in the temp folder
//   (keyed by the server's version and the user); every server copies it (~0.2 s) instead of
//   running initdb again (~1–3 s).
// - stop() always stops the server and removes its folder; a server still running when the
//   process exits is stopped then too.
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { URL } from "node:url";
import pg from "pg";

export const POSTGRES_BIN = "/usr/lib/postgresql/15/bin";
/** The superuser of every cluster started here (trust auth, loopback only). */
export const POSTGRES_USER = "runflow";

/** Why no server can start here, or undefined when one can. */
export function postgresUnavailable() {
  for (const program of ["initdb", "pg_ctl", "postgres"]) {
    if (!existsSync(path.join(POSTGRES_BIN, program))) {
      return `${POSTGRES_BIN}/${program} is absent (apt-get install postgresql; .ci/run installs it)`;
    }
  }
  return undefined;
}

/** Starts a new server on a fresh cluster; options.settings are extra `-c name=value`. */
export async function startPostgres(options = {}) {
  const unavailable = postgresUnavailable();
  if (unavailable) throw new Error(`cannot start PostgreSQL: ${unavailable}`);

  const root = mkdtempSync(path.join(os.tmpdir(), "runflow-pg-"));
  handToServerUser(root);
  const dataDir = path.join(root, "data");
  const logFile = path.join(root, "server.log");
  copyCluster(templateCluster(), dataDir);

  let port = 0;
  let running = false;
  let removed = false;
  const settings = { fsync: "on", ...options.settings };

  const start = () => {
    const result = runAsServerUser("pg_ctl", [
      "start",
      "--wait",
      "--silent",
      "-D",
      dataDir,
      "-l",
      logFile,
      "-o",
      serverOptions(port, root, settings),
    ]);
    if (result.status !== 0) {
      throw new Error(`pg_ctl start failed (${result.stderr.trim()}); server log:\n${readLog(logFile)}`);
    }
    running = true;
  };

  const stop = () => {
    if (removed) return;
    if (running || existsSync(path.join(dataDir, "postmaster.pid"))) {
      runAsServerUser("pg_ctl", ["stop", "--wait", "--silent", "-D", dataDir, "-m", "immediate"]);
    }
    running = false;
    removed = true;
    process.off("exit", stop);
    rmSync(root, { recursive: true, force: true });
  };
  process.on("exit", stop);

  // The free port is found by binding port 0 and letting go of it: another process may take
  // it in between, so a failed start is tried again on another port.
  for (let attempt = 1; ; attempt++) {
    port = await freeLoopbackPort();
    try {
      start();
      break;
    } catch (error) {
      if (attempt === 3) {
        stop();
        throw error;
      }
    }
  }

  const url = `postgres://${POSTGRES_USER}@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    dataDir,
    logFile,
    createDatabase: () => createDatabase(url),
    crash() {
      const result = runAsServerUser("pg_ctl", [
        "stop",
        "--wait",
        "--silent",
        "-D",
        dataDir,
        "-m",
        "immediate",
      ]);
      if (result.status !== 0) throw new Error(`pg_ctl stop -m immediate failed: ${result.stderr.trim()}`);
      running = false;
    },
    start,
    stop,
  };
}

/** Creates a new empty database `t_<random>` on the server of `adminUrl`; returns its URL. */
export async function createDatabase(adminUrl) {
  const name = `t_${randomBytes(6).toString("hex")}`;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

function serverOptions(port, socketDir, settings) {
  const extra = Object.entries(settings).map(([name, value]) => `-c ${name}=${value}`);
  // pg_ctl passes this string through a shell: every part is a plain word (the folder comes
  // from mkdtemp under the temp folder), so no quoting is needed.
  return ["-c listen_addresses=127.0.0.1", `-p ${port}`, `-k ${socketDir}`, ...extra].join(" ");
}

/**
 * The initdb'd cluster every server copies. Made once (by whichever process gets there
 * first; a rename makes it appear whole) and kept in the temp folder for later runs.
 */
function templateCluster() {
  const version = execFileSync(path.join(POSTGRES_BIN, "postgres"), ["--version"], { encoding: "utf8" });
  const major = /(\d+)/.exec(version)?.[1] ?? "unknown";
  const key = `${major}-${os.userInfo().uid}-${POSTGRES_USER}-wal1`;
  const template = path.join(os.tmpdir(), `runflow-pg-template-${key}`);
  if (existsSync(path.join(template, "PG_VERSION"))) return template;

  const building = mkdtempSync(path.join(os.tmpdir(), "runflow-pg-template-building-"));
  handToServerUser(building);
  const dataDir = path.join(building, "data");
  // --no-sync: the template is a copy source, not a database; the servers run with fsync on.
  const result = runAsServerUser("initdb", [
    "-D",
    dataDir,
    "-U",
    POSTGRES_USER,
    "--auth=trust",
    "--encoding=UTF8",
    "--no-locale",
    "--no-sync",
    "--no-instructions",
    // 1 MB WAL segments instead of 16: a smaller cluster to copy for every server.
    "--wal-segsize=1",
  ]);
  if (result.status !== 0) {
    rmSync(building, { recursive: true, force: true });
    throw new Error(`initdb failed: ${result.stderr.trim() || result.stdout.trim()}`);
  }
  try {
    renameSync(dataDir, template);
  } catch (error) {
    // Another process made it first: use theirs.
    if (!existsSync(path.join(template, "PG_VERSION"))) throw error;
  } finally {
    rmSync(building, { recursive: true, force: true });
  }
  return template;
}

function copyCluster(template, dataDir) {
  // cp -a keeps the owner (the postgres user, when root runs it) and the 0700 mode
  // PostgreSQL insists on.
  execFileSync("cp", ["-a", template, dataDir]);
}

function runAsServerUser(program, args) {
  const binary = path.join(POSTGRES_BIN, program);
  const [command, commandArgs] = isRoot()
    ? ["runuser", ["-u", "postgres", "--", binary, ...args]]
    : [binary, args];
  // The temp folder as working directory: the postgres user may not enter the caller's one.
  return spawnSync(command, commandArgs, { encoding: "utf8", timeout: 60_000, cwd: os.tmpdir() });
}

function handToServerUser(target) {
  if (isRoot()) execFileSync("chown", ["postgres:postgres", target]);
}

function isRoot() {
  return process.getuid?.() === 0;
}

function freeLoopbackPort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function readLog(logFile) {
  try {
    return readFileSync(logFile, "utf8");
  } catch {
    return "(no log)";
  }
}
