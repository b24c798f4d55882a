/**
 * The store conformance suite (store-conformance.ts) on the SQLite adapter: real files in a
 * temp folder, and a real second process for the crash.
 */
import { openSqliteStateStore } from "../src/store/index.js";
import { storeConformance } from "./store-conformance.js";
import { spawnStateStoreChild, tempDbPath } from "./store-helpers.js";

storeConformance("SQLite", {
  openFresh: async () => {
    const location = tempDbPath();
    return { store: await openSqliteStateStore(location, { secrets: [] }), location };
  },
  reopen: (location) => openSqliteStateStore(location, { secrets: [] }),
  runInChild: (location, body, args) => spawnStateStoreChild(location, body, args).exited,
});
