import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // The spawned CLIs' code cache in a folder of the run (test/helpers/compile-cache-global-setup.ts).
    globalSetup: ["test/helpers/compile-cache-global-setup.ts"],
    // The JSON report gives .ci/run its closing "N passed, N failed" line.
    reporters: ["default", ["json", { outputFile: ".vitest-results.json" }]],
  },
});
