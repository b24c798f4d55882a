import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { deflateSync } from "node:zlib";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { checkMediaInput, probeMedia } from "../src/api/media-probe.js";
import { loadModelRegistry, MediaUnreachableError, requireModel } from "../src/models/index.js";

const registry = loadModelRegistry({ cwd: os.tmpdir() });
const aleph = requireModel(registry, "runwayml/runway-aleph/video-to-video");
const hailuo = requireModel(registry, "minimax/Hailuo Video 01 Live");

const PIXELS = "The uploaded image width and height must both exceed 300 pixels.";
const ASPECT = "The aspect ratio range should be 2:5 to 5:2.";
const SIZE = "File size must be less than 16 MB.";
const TOKEN = "rf-test-token-never-sent";

// --- real media bytes -------------------------------------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = (CRC_TABLE[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}
/** A valid grey PNG of the given size. */
function png(width: number, height: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.writeUInt8(8, 8); // bit depth
  header.writeUInt8(0, 9); // greyscale
  const rows = Buffer.alloc((width + 1) * height, 0x80);
  for (let row = 0; row < height; row++) rows[row * (width + 1)] = 0; // filter: none
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", header),
    pngChunk("IDAT", deflateSync(rows)),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}
/** A JPEG whose frame header comes after ~190 KB of APP1 (EXIF-like) data, as cameras write. */
function jpegWithBigExif(width: number, height: number): Buffer {
  const segment = (marker: number, data: Buffer) => {
    const head = Buffer.from([0xff, marker, 0, 0]);
    head.writeUInt16BE(data.length + 2, 2);
    return Buffer.concat([head, data]);
  };
  const app1 = segment(0xe1, Buffer.concat([Buffer.from("Exif\0\0"), Buffer.alloc(65_000, 0x11)]));
  const frame = Buffer.from([8, 0, 0, 0, 0, 1, 1, 0x11, 0]);
  frame.writeUInt16BE(height, 1);
  frame.writeUInt16BE(width, 3);
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    app1,
    app1,
    app1,
    segment(0xc0, frame),
    Buffer.from([0xff, 0xd9]),
  ]);
}

// --- a media host on loopback ------------------------------------------------------------

interface Seen {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

const files = new Map<string, Buffer>([
  ["/still-200x200.png", png(200, 200)],
  ["/still-1280x720.png", png(1280, 720)],
  ["/still-100x400.png", png(100, 400)],
  ["/photo.jpg", jpegWithBigExif(1024, 768)],
]);
const BIG_VIDEO_BYTES = 17_000_000;

let server: Server;
let base: string;
const seen: Seen[] = [];

function serveFile(method: string, range: string | undefined, body: Buffer, res: ServerResponse) {
  const match = range ? /^bytes=(\d+)-(\d+)$/.exec(range) : null;
  if (!match) {
    res.writeHead(200, { "content-length": body.length, "content-type": "image/png" });
    res.end(method === "HEAD" ? undefined : body);
    return;
  }
  const start = Number(match[1]);
  const end = Math.min(Number(match[2]), body.length - 1);
  res.writeHead(206, {
    "content-range": `bytes ${start}-${end}/${body.length}`,
    "content-length": end - start + 1,
  });
  res.end(body.subarray(start, end + 1));
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? "/";
    seen.push({ method: req.method ?? "", path, headers: req.headers });
    const range = req.headers.range;
    const file = files.get(path);
    if (file) return serveFile(req.method ?? "GET", range, file, res);
    if (path === "/big.mp4" || path === "/big-no-head.mp4") {
      if (req.method === "HEAD") {
        if (path === "/big-no-head.mp4") return res.writeHead(405).end();
        // A HEAD answer carries the length without a body: no 17 MB is ever allocated.
        return res.writeHead(200, { "content-length": BIG_VIDEO_BYTES, "content-type": "video/mp4" }).end();
      }
      res.writeHead(206, { "content-range": `bytes 0-0/${BIG_VIDEO_BYTES}`, "content-length": 1 });
      return res.end(Buffer.from([0]));
    }
    if (path === "/small.mp4") {
      return res
        .writeHead(200, { "content-length": 1000 })
        .end(req.method === "HEAD" ? undefined : Buffer.alloc(1000));
    }
    if (path === "/hang.png") return; // never answers
    res.writeHead(404, "Not Found").end("no such file");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.RUNCOMFY_API_TOKEN = TOKEN;
});

afterAll(async () => {
  delete process.env.RUNCOMFY_API_TOKEN;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  // The probe must never have shown the media host the API token, in any header.
  for (const request of seen) {
    expect(request.headers.authorization).toBeUndefined();
    expect(JSON.stringify(request.headers)).not.toContain(TOKEN);
  }
});

beforeEach(() => {
  seen.length = 0;
});

function requestsTo(path: string): string[] {
  return seen.filter((r) => r.path === path).map((r) => `${r.method} ${r.headers.range ?? ""}`.trim());
}

// --- the tests ---------------------------------------------------------------------------

describe("probeMedia", () => {
  test("reads the pixel size of a PNG from its first 64 KiB", async () => {
    const facts = await probeMedia(`${base}/still-1280x720.png`, { size: false, dimensions: true });
    expect(facts).toMatchObject({
      width: 1280,
      height: 720,
      sizeBytes: files.get("/still-1280x720.png")?.length,
    });
    expect(requestsTo("/still-1280x720.png")).toEqual(["GET bytes=0-65535"]);
  });

  test("widens once to 1 MiB when a JPEG's frame header lies past a big EXIF block", async () => {
    const facts = await probeMedia(`${base}/photo.jpg`, { size: false, dimensions: true });
    expect(facts).toMatchObject({ width: 1024, height: 768 });
    expect(requestsTo("/photo.jpg")).toEqual(["GET bytes=0-65535", "GET bytes=0-1048575"]);
  });

  test("learns a file's size from HEAD alone", async () => {
    const facts = await probeMedia(`${base}/big.mp4`, { size: true, dimensions: false });
    expect(facts.sizeBytes).toBe(BIG_VIDEO_BYTES);
    expect(requestsTo("/big.mp4")).toEqual(["HEAD"]);
  });

  test("falls back to a one-byte ranged GET when HEAD is refused with 405", async () => {
    const facts = await probeMedia(`${base}/big-no-head.mp4`, { size: true, dimensions: false });
    expect(facts.sizeBytes).toBe(BIG_VIDEO_BYTES);
    expect(requestsTo("/big-no-head.mp4")).toEqual(["HEAD", "GET bytes=0-0"]);
  });

  test("leaves dimensions unknown for a file that is not an image", async () => {
    const facts = await probeMedia(`${base}/small.mp4`, { size: true, dimensions: true });
    expect(facts).toMatchObject({ sizeBytes: 1000, width: undefined, height: undefined });
  });

  test("turns an HTTP error into a clear media_unreachable error", async () => {
    await expect(probeMedia(`${base}/gone.png`, { size: true, dimensions: false })).rejects.toThrow(
      new MediaUnreachableError(`${base}/gone.png`, "HTTP 404 Not Found"),
    );
  });

  test("turns a refused connection into a media_unreachable error", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const url = `http://127.0.0.1:${port}/a.png`;
    await expect(probeMedia(url, { size: true, dimensions: false })).rejects.toThrow(
      `could not fetch ${url}: ECONNREFUSED`,
    );
  });

  test("gives up on a host that does not answer within the timeout", async () => {
    const url = `${base}/hang.png`;
    await expect(probeMedia(url, { size: false, dimensions: true }, { timeoutMs: 100 })).rejects.toThrow(
      `could not fetch ${url}: no answer within 0.1 s`,
    );
  });

  test("lets the caller's abort through instead of blaming the medium", async () => {
    const controller = new AbortController();
    controller.abort();
    const probe = probeMedia(
      `${base}/big.mp4`,
      { size: true, dimensions: false },
      { signal: controller.signal },
    );
    await expect(probe).rejects.toSatisfy((error) => !(error instanceof MediaUnreachableError));
  });
});

describe("checkMediaInput", () => {
  const still = (name: string) => ({ prompt: "a cat", image_url: `${base}/${name}` });

  test("fails a 200×200 still for Hailuo with the schema's own message", async () => {
    expect(await checkMediaInput(hailuo, still("still-200x200.png"))).toEqual([
      { field: "image_url", kind: "media", message: PIXELS, detail: "200×200 px" },
    ]);
  });

  test("passes a 1280×720 still for Hailuo", async () => {
    expect(await checkMediaInput(hailuo, still("still-1280x720.png"))).toEqual([]);
  });

  test("fails a 100×400 still on both its size and its aspect ratio", async () => {
    const issues = await checkMediaInput(hailuo, still("still-100x400.png"));
    expect(issues.map((issue) => issue.message)).toEqual([PIXELS, ASPECT]);
  });

  test("fails a 17,000,000-byte video for Aleph after only a HEAD", async () => {
    const issues = await checkMediaInput(aleph, {
      prompt: "p",
      video_url: `${base}/big.mp4`,
      ratio: "1280:720",
    });
    expect(issues).toEqual([{ field: "video_url", kind: "media", message: SIZE, detail: "17000000 bytes" }]);
    expect(requestsTo("/big.mp4")).toEqual(["HEAD"]);
  });

  test("probes a URL used by two fields once", async () => {
    const url = `${base}/small.mp4`;
    expect(await checkMediaInput(aleph, { prompt: "p", video_url: url, image_url: url })).toEqual([]);
    expect(requestsTo("/small.mp4")).toEqual(["HEAD"]);
  });

  test("reports an unreachable medium as an issue naming the field", async () => {
    expect(await checkMediaInput(hailuo, still("gone.png"))).toEqual([
      {
        field: "image_url",
        kind: "media_unreachable",
        message: `input.image_url: could not fetch ${base}/gone.png: HTTP 404 Not Found`,
      },
    ]);
  });

  test("reports a plain-http URL off loopback without fetching it", async () => {
    const issues = await checkMediaInput(hailuo, { prompt: "p", image_url: "http://cdn.example.com/a.png" });
    expect(issues.map((issue) => issue.kind)).toEqual(["media_url"]);
    expect(seen).toEqual([]);
  });

  test("skips deferred fields", async () => {
    const issues = await checkMediaInput(
      aleph,
      { prompt: "p", video_url: "${{ steps.animate.output.video }}" },
      { deferred: new Set(["video_url"]) },
    );
    expect(issues).toEqual([]);
    expect(seen).toEqual([]);
  });

  test("shares probes across calls through a caller's cache", async () => {
    const cache = new Map();
    await checkMediaInput(hailuo, still("still-1280x720.png"), { cache });
    await checkMediaInput(hailuo, { ...still("still-1280x720.png"), prompt: "a dog" }, { cache });
    expect(requestsTo("/still-1280x720.png")).toEqual(["GET bytes=0-65535"]);
  });
});
