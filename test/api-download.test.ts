/**
 * downloadFile over real HTTP into a real temp folder: content and sha256 right, atomic (no
 * partial file after a failure), retried on 5xx / 429 / cut bodies, and never sending an
 * Authorization header — checked in the emulator's own request log.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { RunComfyClient } from "../src/api/client.js";
import { downloadFile } from "../src/api/download.js";
import { DownloadError } from "../src/api/errors.js";
import { startEmulator, type RunningEmulator } from "../src/emulator/index.js";
import {
  ALEPH,
  alephInput,
  fakeClock,
  rejectionOf,
  startTestServer,
  TOKEN,
  type FakeClock,
} from "./api-helpers.js";

let emulator: RunningEmulator;
let clock: FakeClock = fakeClock();
let dir: string;

beforeAll(async () => {
  emulator = await startEmulator({ token: TOKEN, duration: 2_000, clock: { now: () => clock.now() } });
});
beforeEach(() => {
  clock = fakeClock();
  emulator.reset();
  dir = mkdtempSync(path.join(tmpdir(), "runflow-api-download-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));
afterAll(() => emulator.close());

/** Runs an Aleph request to success through the client and returns its output video URL. */
async function outputVideoUrl(prompt = "a cat [emulator:output-bytes=300000]"): Promise<string> {
  const api = new RunComfyClient({ baseUrl: emulator.url, token: TOKEN, clock });
  const outcome = await api.submit(ALEPH, alephInput(emulator.url, prompt));
  if (outcome.kind !== "submitted") throw new Error(outcome.reason);
  const result = await api.waitForResult(outcome.requestId);
  const video = result.output?.video;
  if (typeof video !== "string") throw new Error(`no video output: ${JSON.stringify(result)}`);
  return video;
}

async function reference(url: string): Promise<Buffer> {
  return Buffer.from(await (await fetch(url)).arrayBuffer());
}

function filesCalls() {
  return emulator.requestLog().filter((entry) => entry.endpoint === "files");
}

/** Everything in `folder`, recursively, relative to it. */
function listing(folder: string): string[] {
  return readdirSync(folder, { recursive: true }).map(String).sort();
}

describe("downloadFile", () => {
  test("downloads an output with the right bytes and sha256, into a folder it creates", async () => {
    const url = await outputVideoUrl();
    const destination = path.join(dir, "outputs", "cat", "video.mp4");
    const downloaded = await downloadFile(url, destination, { clock });
    const expected = await reference(url);
    expect(downloaded).toEqual({
      path: destination,
      bytes: 300_000,
      sha256: createHash("sha256").update(expected).digest("hex"),
      contentType: "video/mp4",
    });
    expect(readFileSync(destination).equals(expected)).toBe(true);
    expect(listing(dir)).toEqual([
      "outputs",
      path.join("outputs", "cat"),
      path.join("outputs", "cat", "video.mp4"),
    ]);
  });

  test("never sends Authorization to the file host, though the API calls before it carried the token", async () => {
    const url = await outputVideoUrl();
    await downloadFile(url, path.join(dir, "video.mp4"), { clock });
    const log = emulator.requestLog();
    expect(log.filter((entry) => entry.endpoint === "submit")[0]?.headers.authorization).toBe("[redacted]");
    expect(filesCalls()).toHaveLength(1);
    expect(filesCalls()[0]?.headers).not.toHaveProperty("authorization");
  });

  test("retries after 503 and 429 answers, honouring Retry-After, and succeeds", async () => {
    const url = await outputVideoUrl();
    emulator.configure({
      faults: [
        { endpoint: "files", kind: "503", times: 1 },
        { endpoint: "files", kind: "429", times: 1, retryAfter: 4 },
      ],
    });
    const sleepsBefore = clock.sleeps.length;
    const downloaded = await downloadFile(url, path.join(dir, "video.mp4"), { clock, random: () => 0.5 });
    expect(downloaded.bytes).toBe(300_000);
    expect(filesCalls().map((entry) => entry.status)).toEqual([503, 429, 200]);
    expect(clock.sleeps.slice(sleepsBefore)).toEqual([375, 4_000]);
  });

  test("retries a body cut short of its Content-Length, and leaves no partial file behind", async () => {
    const url = await outputVideoUrl();
    emulator.configure({ faults: [{ endpoint: "files", kind: "truncate", times: 1 }] });
    const destination = path.join(dir, "video.mp4");
    const downloaded = await downloadFile(url, destination, { clock });
    expect(filesCalls().map((entry) => entry.fault ?? "none")).toEqual(["truncate", "none"]);
    expect(listing(dir)).toEqual(["video.mp4"]);
    expect(downloaded.sha256).toBe(
      createHash("sha256")
        .update(await reference(url))
        .digest("hex"),
    );
  });

  test("fails with DownloadError after the attempts, leaving neither the file nor a temporary part", async () => {
    const url = await outputVideoUrl();
    emulator.configure({ faults: [{ endpoint: "files", kind: "truncate", times: 2 }] });
    const destination = path.join(dir, "video.mp4");
    const error = await rejectionOf(downloadFile(url, destination, { clock, attempts: 2 }));
    expect(error).toBeInstanceOf(DownloadError);
    expect(existsSync(destination)).toBe(false);
    expect(listing(dir)).toEqual([]);
  });

  test("leaves an existing file untouched when a new download of it fails", async () => {
    const url = await outputVideoUrl();
    const destination = path.join(dir, "video.mp4");
    writeFileSync(destination, "the previous run's file");
    emulator.configure({ faults: [{ endpoint: "files", kind: "truncate", times: 1 }] });
    await rejectionOf(downloadFile(url, destination, { clock, attempts: 1 }));
    expect(readFileSync(destination, "utf8")).toBe("the previous run's file");
    expect(listing(dir)).toEqual(["video.mp4"]);
  });

  test("does not retry a 404, and says which URL failed", async () => {
    const url = `${emulator.url}/files/no-such-request/video.mp4`;
    const error = await rejectionOf(downloadFile(url, path.join(dir, "video.mp4"), { clock }));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error).toMatchObject({ status: 404, message: `could not download ${url}: HTTP 404` });
    expect(filesCalls()).toHaveLength(1);
  });

  test("refuses a file larger than maxBytes and keeps nothing of it", async () => {
    const url = `${emulator.url}/media/video.mp4?bytes=200000`;
    const error = await rejectionOf(
      downloadFile(url, path.join(dir, "big.mp4"), { clock, maxBytes: 100_000 }),
    );
    expect(error).toBeInstanceOf(DownloadError);
    expect((error as Error).message).toContain("larger than the 100000 bytes allowed");
    expect(listing(dir)).toEqual([]);
  });

  test("keeps a signed URL's query out of its messages", async () => {
    const url = `${emulator.url}/files/nope/video.mp4?signature=s3cr3t`;
    const error = await rejectionOf(downloadFile(url, path.join(dir, "v.mp4"), { clock }));
    expect((error as Error).message).not.toContain("s3cr3t");
  });

  test("removes the temporary part when a stream without Content-Length breaks mid-way", async () => {
    const server = await startTestServer((_request, response) => {
      response.writeHead(200, { "content-type": "video/mp4" });
      response.write(Buffer.alloc(64 * 1024, 1));
      setImmediate(() => response.socket?.destroy());
    });
    try {
      const error = await rejectionOf(
        downloadFile(`${server.url}/out.mp4`, path.join(dir, "out.mp4"), { clock, attempts: 2 }),
      );
      expect(error).toBeInstanceOf(DownloadError);
      expect((error as Error).message).toBe(`could not download ${server.url}/out.mp4: UND_ERR_SOCKET`);
      expect(server.received).toHaveLength(2);
      expect(listing(dir)).toEqual([]);
    } finally {
      await server.close();
    }
  });

  test("never sends Authorization even to the API's own host", async () => {
    const server = await startTestServer((_request, response) => {
      response.writeHead(200, { "content-length": "5" });
      response.end("hello");
    });
    try {
      await downloadFile(`${server.url}/v1/files/out.txt`, path.join(dir, "out.txt"), { clock });
      expect(server.received[0]?.headers).not.toHaveProperty("authorization");
      expect(server.received[0]?.headers["accept-encoding"]).toBe("identity");
    } finally {
      await server.close();
    }
  });

  test("follows a redirect of a signed output URL to the file itself", async () => {
    const server = await startTestServer((request, response) => {
      if (request.url === "/signed/out.txt?sig=1") {
        response.writeHead(302, { location: "/store/out.txt" });
        response.end();
        return;
      }
      response.writeHead(200, { "content-length": "5", "content-type": "text/plain" });
      response.end("hello");
    });
    try {
      const file = await downloadFile(`${server.url}/signed/out.txt?sig=1`, path.join(dir, "out.txt"), {
        clock,
      });
      expect(readFileSync(path.join(dir, "out.txt"), "utf8")).toBe("hello");
      expect(file).toMatchObject({ bytes: 5, contentType: "text/plain" });
      expect(server.received.map((entry) => entry.path)).toEqual(["/signed/out.txt?sig=1", "/store/out.txt"]);
    } finally {
      await server.close();
    }
  });
});
