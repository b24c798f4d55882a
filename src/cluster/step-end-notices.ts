/**
 * "A step of this run ended", heard from PostgreSQL (LISTEN/NOTIFY): the apply that follows
 * a run executed by workers reads the run's changes at once instead of at its next periodic
 * read (cluster-dispatcher.ts) — the run's last step is known ended a few milliseconds after
 * the worker's write commits, not 0–200 ms later. The steps table's trigger (PostgreSQL
 * migration 7) notifies `runflow_step_ended` with the run's id whenever a step enters a
 * terminal state, so the notice leaves when the write commits.
 *
 * Notices are a speed-up, never the guarantee: the periodic reads stay (a lost connection, a
 * notice sent before this listened), and what the apply learns comes from the read, not the
 * notice.
 */
import type pg from "pg";

export const STEP_ENDED_CHANNEL = "runflow_step_ended";

export class StepEndNotices {
  readonly #connect: () => pg.Client;
  #client: pg.Client | undefined;
  #closed = false;

  /** `connect` makes a new (unconnected) client of the state's database. */
  constructor(connect: () => pg.Client) {
    this.#connect = connect;
  }

  /**
   * Calls `ended` for every notice about `runId`, from when LISTEN is in place (resolves
   * true) until close(). Resolves false when it cannot listen: the reads alone then follow.
   */
  async listen(runId: string, ended: () => void): Promise<boolean> {
    if (this.#closed || this.#client) return false;
    const client = this.#connect();
    this.#client = client;
    const lost = () => {
      if (this.#client !== client) return;
      this.#client = undefined;
      void client.end().catch(() => undefined);
    };
    client.on("error", lost);
    client.on("end", lost);
    client.on("notification", (message) => {
      if (message.channel === STEP_ENDED_CHANNEL && message.payload === runId) ended();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${STEP_ENDED_CHANNEL}`);
      return this.#client === client;
    } catch {
      lost();
      return false;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }
}
