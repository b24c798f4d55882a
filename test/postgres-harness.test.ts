/**
 * The PostgreSQL the tests start themselves (test/helpers/postgres.ts): a real server on
 * 127.0.0.1 only, whose committed writes survive a crash, and a fresh database per test.
 */
import { existsSync, readFileSync } from "node:fs";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  databasePerTest,
  skipWithoutPostgres,
  startPostgres,
  type PostgresServer,
} from "./helpers/postgres.js";

const skip = skipWithoutPostgres("postgres harness");

/** Runs `work` with a connected client, and always ends it. */
async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  // A server that goes away under a connected client makes it emit "error"; without a
  // listener that would end the test process.
  client.on("error", () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The local addresses of the sockets listening on TCP `port` (from /proc/net/tcp{,6}). */
function listeningAddresses(port: number): string[] {
  const addresses: string[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (!local || state !== "0A") continue; // 0A: LISTEN
      const [hexAddress = "", hexPort = ""] = local.split(":");
      if (Number.parseInt(hexPort, 16) !== port) continue;
      addresses.push(hexAddress.length === 8 ? ipv4FromProc(hexAddress) : `ipv6:${hexAddress}`);
    }
  }
  return addresses;
}

/** /proc/net/tcp writes an IPv4 address as one little-endian 32-bit hex number. */
function ipv4FromProc(hex: string): string {
  return [6, 4, 2, 0].map((at) => Number.parseInt(hex.slice(at, at + 2), 16)).join(".");
}

describe.skipIf(skip)("a test's own PostgreSQL server", () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  it("listens on 127.0.0.1 only, with fsync on", async () => {
    expect(listeningAddresses(server.port)).toEqual(["127.0.0.1"]);
    const settings = await withClient(server.url, async (client) => {
      const { rows } = await client.query<{ name: string; setting: string }>(
        "SELECT name, setting FROM pg_settings WHERE name IN ('listen_addresses', 'fsync') ORDER BY name",
      );
      return Object.fromEntries(rows.map((row) => [row.name, row.setting]));
    });
    expect(settings).toEqual({ fsync: "on", listen_addresses: "127.0.0.1" });
  });

  it("keeps a committed row through a crash (pg_ctl stop -m immediate) and a restart", async () => {
    const url = await server.createDatabase();
    await withClient(url, async (client) => {
      await client.query("CREATE TABLE attempts (step text PRIMARY KEY, request_id text NOT NULL)");
      await client.query("INSERT INTO attempts VALUES ($1, $2)", ["stills-1", "req-42"]);
      server.crash();
      // The connection died with the server: the client is refused from now on.
      await expect(client.query("SELECT 1")).rejects.toThrow();
    });

    server.start();

    // The row came back by replaying the WAL (no shutdown checkpoint wrote it out).
    const log = readFileSync(server.logFile, "utf8");
    expect(log).toMatch(/not properly shut down; automatic recovery in progress/);
    expect(log).toMatch(/redo done at/);
    const rows = await withClient(url, async (client) => {
      const result = await client.query<{ step: string; request_id: string }>("SELECT * FROM attempts");
      return result.rows;
    });
    expect(rows).toEqual([{ step: "stills-1", request_id: "req-42" }]);
  });
});

describe.skipIf(skip)("stop()", () => {
  it("stops the server and removes its folder", async () => {
    const server = await startPostgres();
    await withClient(server.url, (client) => client.query("SELECT 1"));
    server.stop();
    expect(existsSync(server.dataDir)).toBe(false);
    expect(listeningAddresses(server.port)).toEqual([]);
    await expect(withClient(server.url, (client) => client.query("SELECT 1"))).rejects.toThrow(
      /ECONNREFUSED/,
    );
    server.stop(); // twice is harmless
  });
});

describe.skipIf(skip)("databasePerTest()", () => {
  const database = databasePerTest();
  const seen: string[] = [];

  it("gives the first test an empty database of its own", async () => {
    seen.push(database.url);
    await withClient(database.url, async (client) => {
      const { rows } = await client.query(
        "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'",
      );
      expect(rows).toEqual([{ n: 0 }]);
      await client.query("CREATE TABLE left_behind (x int)");
    });
  });

  it("gives the next test another, empty one", async () => {
    seen.push(database.url);
    expect(new Set(seen).size).toBe(2);
    expect(database.url).toMatch(/^postgres:\/\/runflow@127\.0\.0\.1:\d+\/t_[0-9a-f]{12}$/);
    await withClient(database.url, async (client) => {
      const { rows } = await client.query(
        "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'",
      );
      expect(rows).toEqual([{ n: 0 }]);
    });
  });
});
