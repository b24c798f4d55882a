/**
 * The store conformance suite (store-conformance.ts) on the PostgreSQL adapter: a real
 * server the tests start (test/helpers/postgres.ts), a fresh database per test, and a real
 * second process, SIGKILLed right after its write resolved, for the crash.
 */
import { describe } from "vitest";
import { openPostgresStateStore } from "../src/store/postgres-state-store.js";
import { databasePerTest, skipWithoutPostgres } from "./helpers/postgres.js";
import { storeConformance } from "./store-conformance.js";
import { spawnPostgresStateStoreChild } from "./store-helpers.js";

const skip = skipWithoutPostgres("store conformance on PostgreSQL");

describe.skipIf(skip)("PostgreSQL", () => {
  const database = databasePerTest();
  storeConformance("PostgreSQL", {
    openFresh: async () => {
      const location = database.url;
      return { store: await openPostgresStateStore(location, { secrets: [] }), location };
    },
    reopen: (location) => openPostgresStateStore(location, { secrets: [] }),
    runInChild: (location, body, args) => spawnPostgresStateStoreChild(location, body, args).exited,
  });
});
