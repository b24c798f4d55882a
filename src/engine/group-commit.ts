/**
 * Group commit for a run's execution. A step makes four or five small writes on its way
 * (waiting, submitting with its attempt, the request id, the result with its outputs). With
 * one commit each, SQLite's commits and the log checkpoints they bring were a third of a
 * zero-duration step's time. Under group commit the writes of one turn of the event loop —
 * every answer that arrived together — share one commit.
 *
 * What stays true (SPEC §4, "written before announced"; the money invariant):
 * - every event is announced only once what it tells is committed: events wait here for the
 *   commit, in the order they were emitted;
 * - a POST goes out only after its `submitting` attempt is committed, and a request id is
 *   committed before the request is polled (model-step.ts awaits `store.committed()`);
 * - a crash loses at most the last turn's writes, none of them announced, none acted upon;
 * - a second SIGINT exits at once, but the store commits the last turn's writes first.
 */
import type { StateStore } from "../store/types.js";
import type { RunEventSink } from "./events.js";

export interface GroupCommit {
  /** Announces each event once the writes made before it are committed. */
  events: RunEventSink;
  /** Commits what is pending and turns group commit off (throws if that commit fails). */
  end(): void;
}

export function startGroupCommit(store: StateStore, events: RunEventSink): GroupCommit {
  store.setGroupCommit(true);
  return {
    events: { emit: (event) => store.afterCommit(() => events.emit(event)) },
    end: () => store.setGroupCommit(false),
  };
}
