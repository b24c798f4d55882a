// @ts-check
import eslint from "@eslint/js";
import tseslint from "typescript-eslint";

/**
 * The layers of src/, lowest first (docs/decisions.md, "Layers"): a folder imports only from
 * folders on a lower line — never from its own line's neighbours nor from above — so
 * imports go one way and there is no cycle. src/errors.ts sits under everything;
 * the emulator stands apart (it imports only models/ and util/); app/ (the composition root
 * that builds the real adapters) sits under cli/; src/index.ts (the library) and cli/ are the top.
 */
const LAYERS = [
  ["util"],
  ["cost", "models", "template"],
  ["workflow"],
  ["plan"],
  ["api", "store"],
  ["engine"],
  ["render", "cluster"],
  ["report"],
  ["app"],
  ["cli"],
];
const ALL_FOLDERS = [...LAYERS.flat(), "emulator"];

/** Matches a relative import of one of `folders` from a file anywhere under src/SOME_FOLDER/. */
const importOf = (folders) => `^(\\.\\./)+(${folders.join("|")})(/|$)`;

/** Network modules: workflow/ reads files and checks them, it never talks to a host. */
const NETWORK_MODULES = [
  "undici",
  "node:http",
  "node:https",
  "http",
  "https",
  "node:net",
  "node:dns",
  "node:tls",
];

/** What each folder may not import besides the folders above its layer. */
const EXTRA_RESTRICTIONS = {
  workflow: [
    {
      regex: `^(${NETWORK_MODULES.join("|")})$`,
      message: "workflow/ does no network I/O: probing media is engine/preflight.ts.",
    },
  ],
  engine: [
    {
      regex: "^(better-sqlite3|undici|node:https?)$",
      message: "The engine talks to its ports (StateStore, HttpTransport), not to SQLite or an HTTP client.",
    },
    {
      regex: "^(bullmq|pg)$",
      message:
        "The engine talks to its Dispatcher and StateStore ports: BullMQ and PostgreSQL stay in src/cluster/ and src/store/.",
    },
    {
      regex: "^(execa|node:child_process|child_process)$",
      message:
        "The engine starts no process: run steps go through its ProcessRunner port (app/process-runner.ts).",
    },
    {
      regex: "(^|/)(store/sqlite|group-commit)[^/]*$",
      message: "The engine uses the StateStore port; SQLite and its group commit stay inside src/store/.",
    },
    {
      // Their types are the ports' shapes; their values (constructors, the token reader) are wiring.
      regex: "^\\.\\./api/(client|env|download|http|probe-transport)(\\.js)?$",
      allowTypeImports: true,
      message:
        "The engine builds no API client, download or HTTP transport and reads no token: it takes them as ports (engine/use-case-ports.ts), built in src/app/.",
    },
  ],
};

/**
 * One `no-restricted-imports` entry per folder (a later entry for the same file would replace
 * it). Exported for test/lint-layers.test.ts, which proves each kind of rule fires.
 */
export function layerRules() {
  const emulator = {
    files: ["src/emulator/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: importOf(ALL_FOLDERS.filter((f) => !["models", "util", "emulator"].includes(f))),
              message: "The emulator stands apart: it imports only models/ and util/.",
            },
          ],
        },
      ],
    },
  };
  const folders = LAYERS.map((line, index) => {
    const above = LAYERS.slice(index + 1).flat();
    return line.map((folder) => {
      const forbidden = [...line.filter((f) => f !== folder), ...above, "emulator"].filter(
        (f) => !(folder === "cli" && f === "emulator"),
      );
      return {
        files: [`src/${folder}/**/*.ts`],
        rules: {
          "no-restricted-imports": [
            "error",
            {
              patterns: [
                {
                  regex: importOf(forbidden),
                  message: `Layers go one way: ${folder}/ imports only from lower layers (docs/decisions.md, "Layers").`,
                },
                ...(EXTRA_RESTRICTIONS[folder] ?? []),
              ],
            },
          ],
        },
      };
    });
  });
  const errors = {
    files: ["src/errors.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: `^\\./(${ALL_FOLDERS.join("|")})/`,
              message: "src/errors.ts is the lowest layer: it imports no folder.",
            },
          ],
        },
      ],
    },
  };
  return [...folders.flat(), emulator, errors];
}

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "state/", "outputs/", "coverage/", "bench/**/*.js"] },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/restrict-template-expressions": [
        "error",
        { allowNumber: true, allowBoolean: true },
      ],
    },
  },
  ...layerRules(),
  {
    files: ["**/*.js"],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    // The CLI's entry (scripts/cli-entry.cjs): plain CommonJS, run before anything is bundled.
    files: ["**/*.cjs"],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      sourceType: "commonjs",
      globals: { require: "readonly", __dirname: "readonly", process: "readonly", Buffer: "readonly" },
    },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
);
