/**
 * The state store the composition root builds: the SQLite file at a path. A module of its
 * own so that a command that only reads runs (`status`, `runs`, `report`) loads the store
 * alone, not the engine (src/app/index.ts).
 */
import type { StateStoreOpener } from "../store/port.js";
import { openSqliteStateStore } from "../store/sqlite-state-store.js";

/** Opens the default state store: the SQLite file at a path. */
export const openStateStore: StateStoreOpener = openSqliteStateStore;
