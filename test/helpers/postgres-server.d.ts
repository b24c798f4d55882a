/** Types of postgres-server.js (plain JavaScript, shared by the tests and the benchmarks). */
export declare const POSTGRES_BIN: string;
/** The superuser of every cluster started here (trust auth, loopback only). */
export declare const POSTGRES_USER: string;

export interface PostgresServer {
  /** postgres:// URL of the maintenance database `postgres`, as the superuser. */
  readonly url: string;
  readonly port: number;
  /** The cluster's data folder (kept across crash() and start(), removed by stop()). */
  readonly dataDir: string;
  /** The server's log file (crash recovery shows there). */
  readonly logFile: string;
  /** Creates a new empty database and returns its URL. */
  createDatabase(): Promise<string>;
  /** Kills the server as a crash would: `pg_ctl stop -m immediate`, no checkpoint. */
  crash(): void;
  /** Starts the server again on the same data folder and port (after crash()). */
  start(): void;
  /** Stops the server (whatever state it is in) and removes its folder. Safe to call twice. */
  stop(): void;
}

export interface StartPostgresOptions {
  /** Extra server settings (`-c name=value`), e.g. `{ max_connections: "300" }`. */
  settings?: Record<string, string>;
}

/** Why no server can start here, or undefined when one can. */
export declare function postgresUnavailable(): string | undefined;
/** Starts a new server on a fresh cluster. */
export declare function startPostgres(options?: StartPostgresOptions): Promise<PostgresServer>;
/** Creates a new empty database `t_<random>` on the server of `adminUrl`; returns its URL. */
export declare function createDatabase(adminUrl: string): Promise<string>;
