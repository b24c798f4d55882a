/**
 * The emulator's file host: outputs of succeeded requests and test media of chosen sizes,
 * served without auth, with Content-Length, HEAD and Range, as real PNG and MP4 files.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { startEmulator, type RunningEmulator } from "../src/emulator/index.js";
import { loadModelRegistry, type ModelEntry, type ModelRegistry } from "../src/models/index.js";
import { alephInput, call, manualClock, resultOf, submitOk } from "./emulator-client.js";

const PNG_SIGNATURE = "89504e470d0a1a0a";

/** Width and height from a PNG's IHDR chunk, which must come first. */
function pngDimensions(bytes: Buffer): { width: number; height: number } {
  expect(bytes.subarray(0, 8).toString("hex")).toBe(PNG_SIGNATURE);
  expect(bytes.subarray(12, 16).toString("latin1")).toBe("IHDR");
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

/** The chunk types of a PNG, in order. */
function pngChunkTypes(bytes: Buffer): string[] {
  const types = [];
  for (let offset = 8; offset < bytes.length;) {
    const length = bytes.readUInt32BE(offset);
    types.push(bytes.subarray(offset + 4, offset + 8).toString("latin1"));
    offset += 12 + length;
  }
  return types;
}

/** The top-level boxes of an MP4: [type, size]. */
function mp4Boxes(bytes: Buffer): [string, number][] {
  const boxes: [string, number][] = [];
  for (let offset = 0; offset < bytes.length;) {
    const size = bytes.readUInt32BE(offset);
    boxes.push([bytes.subarray(offset + 4, offset + 8).toString("latin1"), size]);
    offset += size;
  }
  return boxes;
}

async function download(url: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, { headers });
  return { response, bytes: Buffer.from(await response.arrayBuffer()) };
}

describe("output files", () => {
  const clock = manualClock();
  let emulator: RunningEmulator;
  beforeAll(async () => {
    emulator = await startEmulator({ clock });
  });
  afterEach(() => emulator.reset());
  afterAll(() => emulator.close());

  async function succeededVideoUrl(prompt = "a cat"): Promise<string> {
    const id = await submitOk(emulator.url, alephInput(emulator.url, prompt));
    return ((await resultOf(emulator.url, id)).json.output as { video: string }).video;
  }

  test("serves a succeeded request's video without auth as a real MP4 with Content-Length", async () => {
    const url = await succeededVideoUrl();
    const { response, bytes } = await download(url);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("video/mp4");
    expect(Number(response.headers.get("content-length"))).toBe(bytes.length);
    expect(response.headers.get("accept-ranges")).toBe("bytes");
    const types = mp4Boxes(bytes).map(([type]) => type);
    expect(types[0]).toBe("ftyp");
    expect(types).toEqual(expect.arrayContaining(["moov", "mdat"]));
  });

  test("answers HEAD with the headers of GET and no body", async () => {
    const url = await succeededVideoUrl("x [emulator:output-bytes=5000]");
    const head = await fetch(url, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("5000");
    expect((await head.arrayBuffer()).byteLength).toBe(0);
  });

  test("serves a byte range with 206 and Content-Range, and 416 past the end", async () => {
    const url = await succeededVideoUrl("x [emulator:output-bytes=5000]");
    const whole = (await download(url)).bytes;
    const part = await download(url, { range: "bytes=100-199" });
    expect(part.response.status).toBe(206);
    expect(part.response.headers.get("content-range")).toBe("bytes 100-199/5000");
    expect(part.bytes.equals(whole.subarray(100, 200))).toBe(true);
    const tail = await download(url, { range: "bytes=-10" });
    expect(tail.bytes.equals(whole.subarray(4990))).toBe(true);
    const beyond = await download(url, { range: "bytes=5000-" });
    expect(beyond.response.status).toBe(416);
    expect(beyond.response.headers.get("content-range")).toBe("bytes */5000");
  });

  test("pads an output of a chosen size with a free box after the real video", async () => {
    const url = await succeededVideoUrl("x [emulator:output-bytes=300000]");
    const { bytes } = await download(url);
    expect(bytes.length).toBe(300_000);
    const unpadded = mp4Boxes((await download(await succeededVideoUrl())).bytes);
    const boxes = mp4Boxes(bytes);
    expect(boxes.slice(0, -1)).toEqual(unpadded);
    expect(boxes.at(-1)?.[0]).toBe("free");
    expect(boxes.reduce((total, [, size]) => total + size, 0)).toBe(300_000);
  });

  test("has no file for a request that has not succeeded, nor under another name", async () => {
    emulator.configure({ duration: 10_000 });
    const running = await submitOk(emulator.url, alephInput(emulator.url));
    expect((await call(emulator.url, "GET", `/files/${running}/video.mp4`, { token: null })).status).toBe(
      404,
    );
    const failed = await submitOk(emulator.url, alephInput(emulator.url, "x [emulator:fail]"));
    clock.advance(10_000);
    expect((await call(emulator.url, "GET", `/files/${failed}/video.mp4`, { token: null })).status).toBe(404);
    expect((await call(emulator.url, "GET", `/files/${running}/image.png`, { token: null })).status).toBe(
      404,
    );
    expect((await call(emulator.url, "GET", `/files/${running}/video.mp4`, { token: null })).status).toBe(
      200,
    );
  });
});

describe("image outputs", () => {
  const IMAGE_MODEL = "acme/flux-1/text-to-image";
  let emulator: RunningEmulator;
  beforeAll(async () => {
    const shipped = loadModelRegistry();
    const imageModel: ModelEntry = {
      model_id: IMAGE_MODEL,
      input_schema: { type: "object", required: ["prompt"], properties: { prompt: { type: "string" } } },
    };
    const registry: ModelRegistry = {
      get: (id) => (id === IMAGE_MODEL ? imageModel : shipped.get(id)),
      list: () => [...shipped.list(), imageModel],
      suggest: () => [],
    };
    emulator = await startEmulator({ registry });
  });
  afterAll(() => emulator.close());

  test("a model whose id speaks of images outputs a real PNG image", async () => {
    const id = await submitOk(emulator.url, { prompt: "a red fox" }, IMAGE_MODEL);
    const output = (await resultOf(emulator.url, id)).json.output as Record<string, string>;
    expect(Object.keys(output)).toEqual(["image"]);
    const { response, bytes } = await download(output.image as string);
    expect(response.headers.get("content-type")).toBe("image/png");
    expect(pngDimensions(bytes)).toEqual({ width: 1280, height: 720 });
  });

  test("[emulator:output-size=WxH] chooses the output image's pixel size", async () => {
    const id = await submitOk(emulator.url, { prompt: "small [emulator:output-size=200x100]" }, IMAGE_MODEL);
    const output = (await resultOf(emulator.url, id)).json.output as { image: string };
    expect(pngDimensions((await download(output.image)).bytes)).toEqual({ width: 200, height: 100 });
  });
});

describe("test media", () => {
  let emulator: RunningEmulator;
  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(() => emulator.close());

  test.each([
    [640, 480],
    [200, 200],
    [3000, 300],
    [1, 1],
  ])("serves a PNG of %i×%i pixels", async (width, height) => {
    const { response, bytes } = await download(`${emulator.url}/media/image.png?w=${width}&h=${height}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/png");
    expect(Number(response.headers.get("content-length"))).toBe(bytes.length);
    expect(pngDimensions(bytes)).toEqual({ width, height });
    expect(pngChunkTypes(bytes)).toEqual(["IHDR", "IDAT", "IEND"]);
  });

  test("pads a PNG to exactly the bytes asked for with chunks decoders skip", async () => {
    const { bytes } = await download(`${emulator.url}/media/image.png?w=400&h=300&bytes=200000`);
    expect(bytes.length).toBe(200_000);
    expect(pngDimensions(bytes)).toEqual({ width: 400, height: 300 });
    const types = pngChunkTypes(bytes);
    expect(types[0]).toBe("IHDR");
    expect(types.at(-1)).toBe("IEND");
    expect(new Set(types.slice(2, -1))).toEqual(new Set(["paDd"]));
  });

  test("serves a video of exactly the bytes asked for", async () => {
    const { response, bytes } = await download(`${emulator.url}/media/video.mp4?bytes=1000000`);
    expect(response.headers.get("content-length")).toBe("1000000");
    expect(bytes.length).toBe(1_000_000);
    expect(mp4Boxes(bytes).at(-1)).toEqual([
      "free",
      1_000_000 -
        mp4Boxes(bytes)
          .slice(0, -1)
          .reduce((t, [, s]) => t + s, 0),
    ]);
  });

  test("describes a 200 MB video on HEAD and serves its last bytes by Range without building it", async () => {
    const url = `${emulator.url}/media/video.mp4?bytes=200000000`;
    const head = await fetch(url, { method: "HEAD" });
    expect(head.headers.get("content-length")).toBe("200000000");
    const tail = await download(url, { range: "bytes=199999990-" });
    expect(tail.response.status).toBe(206);
    expect(tail.bytes).toEqual(Buffer.alloc(10));
  });

  test("honours Range on images", async () => {
    const url = `${emulator.url}/media/image.png?w=500&h=500`;
    const whole = (await download(url)).bytes;
    const part = await download(url, { range: "bytes=0-23" });
    expect(part.response.status).toBe(206);
    expect(part.bytes.equals(whole.subarray(0, 24))).toBe(true);
  });

  test.each([
    "/media/image.png?w=0&h=10",
    "/media/image.png?w=abc",
    "/media/image.png?w=20000&h=10",
    "/media/image.png?w=10&h=10&bytes=5",
    "/media/video.mp4?bytes=100",
    "/media/video.mp4?bytes=-1",
  ])("answers 400 with a reason for %s", async (path) => {
    const answer = await call(emulator.url, "GET", path, { token: null });
    expect(answer.status).toBe(400);
    expect(answer.text.length).toBeGreaterThan(10);
  });

  test("answers 404 for media it does not have", async () => {
    expect((await call(emulator.url, "GET", "/media/song.mp3", { token: null })).status).toBe(404);
  });

  test("logs media requests so tests can see no token reached the file host", async () => {
    emulator.reset();
    await fetch(`${emulator.url}/media/video.mp4`);
    const [entry] = emulator.requestLog();
    expect(entry).toMatchObject({ endpoint: "media", path: "/media/video.mp4", status: 200 });
    expect(entry?.headers).not.toHaveProperty("authorization");
  });
});
