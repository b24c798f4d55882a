/**
 * What the emulator received, for tests to assert on ("no Authorization reached the media
 * host"). With bodies kept, every call is kept; without (benchmarks), only the latest calls
 * are, in a ring, plus counters, so memory stays flat however many calls arrive.
 */
import type { Endpoint } from "./config.js";

export interface EmulatorLogEntry {
  seq: number;
  /** ISO-8601 arrival time. */
  at: string;
  method: string;
  path: string;
  query: Record<string, string>;
  /** Lower-cased names; `authorization`, when sent, reads "[redacted]". */
  headers: Record<string, string>;
  /** The parsed JSON body (or its text when not JSON); only when bodies are logged. */
  body?: unknown;
  endpoint: Endpoint | "unknown";
  /** The HTTP status answered; null while pending, or when the connection was dropped unanswered. */
  status: number | null;
  /** The scripted or random fault applied, if any (e.g. `503`, `drop`, `error-rate:502`). */
  fault?: string;
}

export interface LogCounters {
  total: number;
  byEndpoint: Record<string, number>;
  byStatus: Record<string, number>;
}

export const REDACTED = "[redacted]";
const RING_SIZE = 1_000;
const MAX_LOGGED_TEXT = 64 * 1024;

export function redactedHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    headers[name] = name === "authorization" ? REDACTED : Array.isArray(value) ? value.join(", ") : value;
  }
  return headers;
}

/** The body as a test wants to see it: parsed when it is JSON, else (bounded) text. */
export function loggableBody(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text.length > MAX_LOGGED_TEXT ? `${text.slice(0, MAX_LOGGED_TEXT)}…` : text;
  }
}

export class RequestLog {
  private entries: EmulatorLogEntry[] = [];
  /** In ring mode, where the next entry goes. */
  private ringNext = 0;
  private nextSeq = 1;
  private counters: LogCounters = { total: 0, byEndpoint: {}, byStatus: {} };

  constructor(readonly keepBodies: boolean) {}

  /** Records a call as it arrives; the caller fills in `status` (and `fault`) when it answers. */
  open(entry: Omit<EmulatorLogEntry, "seq" | "status">): EmulatorLogEntry {
    const recorded: EmulatorLogEntry = { seq: this.nextSeq++, ...entry, status: null };
    if (!this.keepBodies) delete recorded.body;
    if (this.keepBodies) {
      this.entries.push(recorded);
    } else {
      this.entries[this.ringNext] = recorded;
      this.ringNext = (this.ringNext + 1) % RING_SIZE;
    }
    this.counters.total++;
    this.counters.byEndpoint[entry.endpoint] = (this.counters.byEndpoint[entry.endpoint] ?? 0) + 1;
    return recorded;
  }

  answered(entry: EmulatorLogEntry, status: number | null, fault?: string): void {
    entry.status = status;
    if (fault !== undefined) entry.fault = fault;
    const key = status === null ? "dropped" : String(status);
    this.counters.byStatus[key] = (this.counters.byStatus[key] ?? 0) + 1;
  }

  /** Oldest first. */
  list(): EmulatorLogEntry[] {
    if (this.keepBodies || this.entries.length < RING_SIZE) return [...this.entries];
    return [...this.entries.slice(this.ringNext), ...this.entries.slice(0, this.ringNext)];
  }

  stats(): LogCounters {
    return structuredClone(this.counters);
  }

  clear(): void {
    this.entries = [];
    this.ringNext = 0;
    this.nextSeq = 1;
    this.counters = { total: 0, byEndpoint: {}, byStatus: {} };
  }
}
