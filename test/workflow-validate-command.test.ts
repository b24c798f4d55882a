import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Output } from "../src/cli/context.js";
import { runCli } from "../src/cli/program.js";
import { CHAIN, testdir } from "./workflow-testdir.js";

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const output: Output = {
    stdout: (text) => (stdout += text.endsWith("\n") ? text : `${text}\n`),
    stderr: (text) => (stderr += text.endsWith("\n") ? text : `${text}\n`),
  };
  const code = await runCli(argv, output);
  return { code, stdout, stderr };
}

function flow(text: string, files: Record<string, string> = {}): string {
  return path.join(testdir({ "flow.yaml": text, ...files }), "flow.yaml");
}

describe("runflow validate", () => {
  test("exits 0 with one OK line that counts jobs, instances and steps", async () => {
    const file = flow(CHAIN);
    const { code, stdout, stderr } = await run("validate", file);
    expect(code).toBe(0);
    expect(stderr).toBe("");
    expect(stdout).toBe(`${file}: OK — 4 steps in 2 instances of 1 job\n`);
  });

  test("exits 2 with every problem as file:line:column: message", async () => {
    const file = flow(
      CHAIN.replace("name: chain\n", "name: chain\nconcurrency: 0\n").replace("vars.style", "vars.stlye"),
    );
    const { code, stdout, stderr } = await run("validate", file);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr.split("\n")).toEqual([
      `${file}:3:14: concurrency must be an integer ≥ 1, got \`0\``,
      `${file}:20:19: jobs.teaser.steps[1].input.prompt: \${{ vars.stlye }}: vars has no \`stlye\` (did you mean \`style\`?)`,
      "  hint: declare it under `vars:`, or pass `--var stlye=VALUE`",
      `error: ${file}: 2 problems found; nothing was submitted`,
      "",
    ]);
  });

  test("writes one JSON document with --json, before or after the command", async () => {
    const file = flow(CHAIN.replace("vars.style", "vars.stlye"));
    for (const argv of [
      ["--json", "validate", file],
      ["validate", file, "--json"],
    ]) {
      const { code, stdout } = await run(...argv);
      expect(code).toBe(2);
      expect(JSON.parse(stdout)).toEqual({
        ok: false,
        diagnostics: [
          {
            file,
            line: 19,
            column: 19,
            message:
              "jobs.teaser.steps[1].input.prompt: ${{ vars.stlye }}: vars has no `stlye` (did you mean `style`?)",
            path: "jobs.teaser.steps[1].input.prompt",
            hint: "declare it under `vars:`, or pass `--var stlye=VALUE`",
          },
        ],
      });
    }
    const ok = await run("validate", flow(CHAIN), "--json");
    expect(JSON.parse(ok.stdout)).toEqual({
      ok: true,
      diagnostics: [],
      counts: { jobs: 1, instances: 2, steps: 4 },
    });
  });

  test("applies --var overrides, and refuses a malformed one as a usage error", async () => {
    const file = flow(
      CHAIN.replace("style: noir", 'style: "x"\n  ratio: "1920:1080"').replace(
        "video_url:",
        'ratio: "${{ vars.ratio }}"\n          video_url:',
      ),
    );
    expect((await run("validate", file)).code).toBe(2);
    expect((await run("validate", file, "--var", "ratio=1280:720")).code).toBe(0);
    const bad = await run("validate", file, "--var", "ratio");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("error: --var ratio: expected NAME=VALUE");
    const twice = await run("validate", file, "--var", "ratio=1", "--var", "ratio=2");
    expect(twice.stderr).toContain("--var ratio is given twice");
  });

  test("exits 2 when the file does not exist", async () => {
    const { code, stderr } = await run("validate", "/nonexistent/flow.yaml");
    expect(code).toBe(2);
    expect(stderr).toContain("cannot read workflow file /nonexistent/flow.yaml: no such file");
  });
});

/** A PNG header is all a probe needs to know an image's size. */
function pngHeader(width: number, height: number): Buffer {
  const header = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(header, 0);
  header.writeUInt32BE(13, 8);
  header.write("IHDR", 12, "ascii");
  header.writeUInt32BE(width, 16);
  header.writeUInt32BE(height, 20);
  header.writeUInt8(8, 24);
  header.writeUInt8(6, 25);
  return header;
}

describe("runflow validate --preflight", () => {
  let server: Server;
  let base = "";
  const requests: string[] = [];

  beforeAll(async () => {
    const failedOnce = new Set<string>();
    server = createServer((request, response) => {
      requests.push(request.url ?? "");
      // `flaky-…`: a media host's hiccup, a 503 on the first request for that URL only.
      if (request.url?.includes("flaky") && !failedOnce.has(request.url)) {
        failedOnce.add(request.url);
        response.writeHead(503).end();
        return;
      }
      const size = /(\d+)x(\d+)/.exec(request.url ?? "");
      if (!size) {
        response.writeHead(404).end();
        return;
      }
      const body = pngHeader(Number(size[1]), Number(size[2]));
      response.writeHead(200, { "content-type": "image/png", "content-length": body.length }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const withImages = (cat: string, dog: string): string =>
    CHAIN.replace("https://example.com/cat.png", `${base}/${cat}.png`).replace(
      "https://example.com/dog.png",
      `${base}/${dog}.png`,
    );

  test("probes each media URL once and passes when every medium fits the model's rules", async () => {
    requests.length = 0;
    const { code, stdout } = await run("validate", flow(withImages("1280x720", "1280x720")), "--preflight");
    expect(code).toBe(0);
    expect(stdout).toMatch(/OK — 4 steps in 2 instances of 1 job; 1 media URL probed\n$/);
    expect(new Set(requests)).toEqual(new Set(["/1280x720.png"]));
  });

  test("reports a medium that breaks a rule, located at the item that names it", async () => {
    const file = flow(withImages("1280x720", "200x200"));
    const { code, stderr } = await run("validate", file, "--preflight");
    expect(code).toBe(2);
    expect(stderr).toContain(
      `${file}:9:9: jobs.teaser.steps[0] (animate), instance teaser/dog (item 2): input.image_url: The uploaded image width and height must both exceed 300 pixels. (measured: 200×200 px)`,
    );
  });

  test("tries a media host again after a 503, as apply's preflight does", async () => {
    requests.length = 0;
    const { code, stdout } = await run(
      "validate",
      flow(withImages("flaky-1280x720", "flaky-1280x720")),
      "--preflight",
    );
    expect(code).toBe(0);
    expect(stdout).toMatch(/OK — 4 steps in 2 instances of 1 job; 1 media URL probed\n$/);
    expect(requests).toEqual(["/flaky-1280x720.png", "/flaky-1280x720.png"]);
  });

  test("reports a medium that cannot be fetched", async () => {
    const { code, stderr } = await run("validate", flow(withImages("1280x720", "missing")), "--preflight");
    expect(code).toBe(2);
    expect(stderr).toMatch(/instance teaser\/dog \(item 2\): input\.image_url: could not fetch/);
  });
});
