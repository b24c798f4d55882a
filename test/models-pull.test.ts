import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import type { Output } from "../src/cli/context.js";
import { runCli } from "../src/cli/program.js";
import { loadModelRegistry } from "../src/models/index.js";

const TOKEN = "rf-pull-test-token";
const UPSCALE = {
  model_id: "acme/Up Scale",
  input_schema: {
    type: "object",
    required: ["image_url"],
    properties: { image_url: { type: "string", title: "Image" }, factor: { type: "integer", default: 2 } },
  },
  output_schema: { output: { type: "object", properties: { image: { type: "string" } } } },
};
const BROKEN = {
  model_id: "acme/broken",
  input_schema: {
    type: "object",
    properties: {
      video_url: {
        type: "string",
        validations: [{ validation_rule: "duration_s<", validation_value: 5, validation_error: "Too long." }],
      },
    },
  },
};

let server: Server;
const received: { url: string; headers: IncomingHttpHeaders }[] = [];
const savedEnv = { ...process.env };

beforeAll(async () => {
  server = createServer((req, res) => {
    received.push({ url: req.url ?? "", headers: req.headers });
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== "/v1/models") return res.writeHead(404).end();
    const search = url.searchParams.get("search");
    const models = [UPSCALE, BROKEN].filter((m) => !search || m.model_id.toLowerCase().includes(search));
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ models }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  process.env.RUNCOMFY_BASE_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.RUNCOMFY_API_TOKEN = TOKEN;
});

afterAll(async () => {
  process.env = savedEnv;
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  received.length = 0;
});

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const output: Output = { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) };
  return { code: await runCli(argv, output), stdout, stderr };
}

describe("runflow models pull", () => {
  test("writes each usable catalog entry into --dir, named from its id, and skips the unusable", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "runflow-pull-"));
    try {
      const { code, stdout, stderr } = await run("models", "pull", "--dir", dir);
      expect(code).toBe(0);
      expect(readdirSync(dir)).toEqual(["acme--up-scale.json"]);
      expect(JSON.parse(readFileSync(path.join(dir, "acme--up-scale.json"), "utf8"))).toEqual(UPSCALE);
      expect(stdout).toContain("pulled 1 model schema into");
      expect(stderr).toContain(
        'skipped acme/broken: catalog entry "acme/broken": input_schema.properties.video_url',
      );
      // What was pulled is what the registry then loads.
      expect(
        loadModelRegistry({ includeBuiltin: false, dirs: [dir] }).get("acme/Up Scale")?.input_schema,
      ).toEqual(UPSCALE.input_schema);
      expect(received[0]?.url).toContain("/v1/models");
      expect(received[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("passes --search to the catalog and writes only what matches", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "runflow-pull-"));
    try {
      const { code } = await run("models", "pull", "--search", "scale", "--dir", dir);
      expect(code).toBe(0);
      expect(received[0]?.url).toContain("search=scale");
      expect(readdirSync(dir)).toEqual(["acme--up-scale.json"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("exits 2 when nothing in the catalog matches", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "runflow-pull-"));
    try {
      const { code, stderr } = await run("models", "pull", "--search", "nothing-like-this", "--dir", dir);
      expect(code).toBe(2);
      expect(stderr).toContain('the API\'s catalog has no entry for a model matching "nothing-like-this"');
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
