/**
 * The layering rule of eslint.config.js (docs/decisions.md, "Layers") fires: each kind of
 * forbidden import, linted as if it sat in a file of src/, gives its message, and the
 * imports the layers allow give none. ESLint runs only the layer rules here (the real config's
 * other rules need type information from files on disk); `npm run lint` applies them to src/.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ESLint } from "eslint";
import tseslint from "typescript-eslint";
import { describe, expect, test } from "vitest";
import { layerRules } from "../eslint.config.js";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

const eslint = new ESLint({
  cwd: root,
  overrideConfigFile: true,
  overrideConfig: [{ files: ["**/*.ts"], languageOptions: { parser: tseslint.parser } }, ...layerRules()],
});

/** The messages ESLint gives `code` placed at `filePath` (relative to the project). */
async function messagesFor(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, filePath) });
  return (result?.messages ?? []).map((message) => `${message.ruleId ?? "parse"}: ${message.message}`);
}

describe("layers go one way", () => {
  test("workflow/ imports no network module and not api/", async () => {
    expect(await messagesFor("src/workflow/x.ts", 'import { request } from "undici";\n')).toEqual([
      expect.stringContaining("workflow/ does no network I/O"),
    ]);
    expect(await messagesFor("src/workflow/x.ts", 'import http from "node:http";\n')).toEqual([
      expect.stringContaining("workflow/ does no network I/O"),
    ]);
    expect(
      await messagesFor("src/workflow/x.ts", 'import type { HttpTransport } from "../api/http.js";\n'),
    ).toEqual([expect.stringContaining("workflow/ imports only from lower layers")]);
  });

  test("no api ⇄ models cycle: api/ may use models/, models/ may not use api/", async () => {
    expect(
      await messagesFor("src/models/x.ts", 'import { undiciTransport } from "../api/http.js";\n'),
    ).toEqual([
      "no-restricted-imports: '../api/http.js' import is restricted from being used by a pattern. " +
        'Layers go one way: models/ imports only from lower layers (docs/decisions.md, "Layers").',
    ]);
    expect(
      await messagesFor("src/api/x.ts", 'import type { ModelEntry } from "../models/types.js";\n'),
    ).toEqual([]);
  });

  test("the engine imports no SQLite, no group commit and no HTTP client", async () => {
    for (const source of [
      "better-sqlite3",
      "undici",
      "../store/sqlite.js",
      "../store/group-commit.js",
      "./group-commit.js",
    ]) {
      expect(await messagesFor("src/engine/x.ts", `import x from "${source}";\nvoid x;\n`), source).toEqual([
        expect.stringMatching(
          /not to SQLite or an HTTP client|SQLite and its group commit stay inside src\/store/,
        ),
      ]);
    }
    expect(
      await messagesFor("src/engine/x.ts", 'import type { StateStore } from "../store/types.js";\n'),
    ).toEqual([]);
  });

  test("the engine builds no API client, download, transport or process and reads no token: it takes ports", async () => {
    for (const code of [
      'import { RunComfyClient } from "../api/client.js";\nvoid RunComfyClient;\n',
      'import { createClientFromEnv, readApiToken } from "../api/env.js";\nvoid createClientFromEnv, readApiToken;\n',
      'import { downloadFile } from "../api/download.js";\nvoid downloadFile;\n',
      'import { undiciTransport } from "../api/http.js";\nvoid undiciTransport;\n',
      'import { retryingTransport } from "../api/probe-transport.js";\nvoid retryingTransport;\n',
    ]) {
      expect(await messagesFor("src/engine/x.ts", code), code).toEqual([
        expect.stringContaining("The engine builds no API client, download or HTTP transport"),
      ]);
    }
    for (const source of ["execa", "node:child_process"]) {
      expect(await messagesFor("src/engine/x.ts", `import x from "${source}";\nvoid x;\n`), source).toEqual([
        expect.stringContaining("The engine starts no process"),
      ]);
    }
    // Their types are the ports' shapes.
    expect(
      await messagesFor(
        "src/engine/x.ts",
        'import type { RunComfyClient } from "../api/client.js";\nimport type { HttpTransport } from "../api/http.js";\n',
      ),
    ).toEqual([]);
    // The composition root builds them.
    expect(
      await messagesFor(
        "src/app/x.ts",
        'import { RunComfyClient } from "../api/client.js";\nvoid RunComfyClient;\n',
      ),
    ).toEqual([]);
  });

  test("the engine imports neither the composition root (src/app) nor the CLI", async () => {
    expect(
      await messagesFor("src/engine/x.ts", 'import { openStateStore } from "../app/open-store.js";\n'),
    ).toEqual([expect.stringContaining("engine/ imports only from lower layers")]);
    expect(
      await messagesFor("src/engine/use-cases/x.ts", 'import { runPorts } from "../../app/ports.js";\n'),
    ).toEqual([expect.stringContaining("engine/ imports only from lower layers")]);
    expect(
      await messagesFor("src/engine/x.ts", 'import { globalOptions } from "../cli/context.js";\n'),
    ).toEqual([expect.stringContaining("engine/ imports only from lower layers")]);
  });

  test("a lower layer cannot reach a higher one, at any depth; a higher one can reach down", async () => {
    expect(
      await messagesFor("src/plan/x.ts", 'import { countOf } from "../render/vocabulary.js";\n'),
    ).toEqual([expect.stringContaining("plan/ imports only from lower layers")]);
    expect(
      await messagesFor("src/engine/x.ts", 'import { readStepInput } from "../report/inputs.js";\n'),
    ).toEqual([expect.stringContaining("engine/ imports only from lower layers")]);
    expect(
      await messagesFor("src/api/x.ts", 'import type { StateStore } from "../store/types.js";\n'),
    ).toEqual([expect.stringContaining("api/ imports only from lower layers")]);
    expect(
      await messagesFor(
        "src/render/tty/x.ts",
        'import type { EngineEvent } from "../../engine/events.js";\n',
      ),
    ).toEqual([]);
    expect(
      await messagesFor("src/emulator/x.ts", 'import { runApply } from "../engine/apply.js";\n'),
    ).toEqual([expect.stringContaining("The emulator stands apart")]);
  });
});
