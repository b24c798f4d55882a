/**
 * "A request slot was freed", heard from PostgreSQL (LISTEN/NOTIFY) instead of asked for
 * every 25–250 ms. Whoever deletes a slot row notifies `runflow_slot_freed` with the account
 * and the model in the same statement (account-slots.ts), so the notice is sent when the
 * delete commits, to every process listening. A process keeps one listening connection
 * (not a pooled one: LISTEN belongs to a session) and its waiting requests here.
 *
 * One notice wakes ONE waiter of this process that the freed slot can help — the first, in
 * the order they began to wait, that waits for the account's `concurrency`, or for the
 * `limits` entry of the freed slot's model — so a freed slot costs each process one attempt,
 * not one per waiter. A notice that arrives while a waiter is asking (between its snapshot and
 * its wait) is not lost: the waiter compares the counts of its snapshot and asks again at once.
 * Notices are a speed-up, never the guarantee: waiters still ask on a slow timer (a lost
 * connection, a dead worker's slots that only the next taker frees), and the caps are held by
 * the advisory-locked count alone.
 */
import type pg from "pg";

export const SLOT_FREED_CHANNEL = "runflow_slot_freed";

/** A waiter's view of the frees so far: compared after its attempt to see what it missed. */
export interface FreedSnapshot {
  readonly total: number;
  readonly ofModel: number;
}

interface Waiter {
  account: string;
  model: string;
  /** What refused it: any freed slot of the account helps `concurrency`, only its model's helps `limit`. */
  kind: "concurrency" | "limit";
  wake: () => void;
}

/** The payload of a notice: the account and the model, which carry no token. */
export function slotFreedPayload(account: string, model: string): string {
  return JSON.stringify([account, model]);
}

export class SlotNotices {
  readonly #connect: () => pg.Client;
  #client: pg.Client | undefined;
  #listening: Promise<boolean> | undefined;
  #closed = false;
  /** Frees heard per account: in total and per model. */
  readonly #heard = new Map<string, { total: number; byModel: Map<string, number> }>();
  readonly #waiters: Waiter[] = [];

  /** `connect` makes a new (unconnected) client of the state's database. */
  constructor(connect: () => pg.Client) {
    this.#connect = connect;
  }

  /**
   * Listens (once; again after a lost connection). Resolves false when it cannot: the
   * waiters then rely on their timer alone.
   */
  listen(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    this.#listening ??= this.#start();
    return this.#listening;
  }

  async #start(): Promise<boolean> {
    const client = this.#connect();
    this.#client = client;
    const lost = () => {
      if (this.#client !== client) return;
      this.#client = undefined;
      this.#listening = undefined;
      void client.end().catch(() => undefined);
    };
    client.on("error", lost);
    client.on("end", lost);
    client.on("notification", (message) => {
      if (message.channel === SLOT_FREED_CHANNEL && message.payload) this.#freed(message.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${SLOT_FREED_CHANNEL}`);
      return true;
    } catch {
      lost();
      return false;
    }
  }

  snapshot(account: string, model: string): FreedSnapshot {
    const heard = this.#heard.get(account);
    return { total: heard?.total ?? 0, ofModel: heard?.byModel.get(model) ?? 0 };
  }

  /**
   * Waits until a freed slot may help (`kind` and `model` say what refused the caller), or
   * `timeoutMs`. Returns at once when such a notice came since `since`.
   */
  async wait(
    account: string,
    model: string,
    kind: "concurrency" | "limit",
    since: FreedSnapshot,
    timeoutMs: number,
    /** Ends the wait early (the run stopped submitting). */
    signal?: AbortSignal,
  ): Promise<void> {
    const now = this.snapshot(account, model);
    if (kind === "concurrency" ? now.total !== since.total : now.ofModel !== since.ofModel) return;
    if (signal?.aborted) return;
    await new Promise<void>((resolve) => {
      const end = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", end);
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        resolve();
      };
      const waiter: Waiter = { account, model, kind, wake: end };
      const timer = setTimeout(end, timeoutMs);
      signal?.addEventListener("abort", end, { once: true });
      this.#waiters.push(waiter);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const waiter of this.#waiters.splice(0)) waiter.wake();
    const client = this.#client;
    this.#client = undefined;
    this.#listening = undefined;
    await client?.end().catch(() => undefined);
  }

  #freed(payload: string): void {
    let account: string;
    let model: string;
    try {
      [account, model] = JSON.parse(payload) as [string, string];
    } catch {
      return;
    }
    let heard = this.#heard.get(account);
    if (!heard) this.#heard.set(account, (heard = { total: 0, byModel: new Map() }));
    heard.total += 1;
    heard.byModel.set(model, (heard.byModel.get(model) ?? 0) + 1);
    const at = this.#waiters.findIndex(
      (waiter) => waiter.account === account && (waiter.kind === "concurrency" || waiter.model === model),
    );
    if (at >= 0) this.#waiters.splice(at, 1)[0]!.wake();
  }
}
