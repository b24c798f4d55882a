/**
 * The file host: outputs of succeeded requests (`/files/<id>/<name>`) and test media
 * (`/media/image.png?w=&h=[&bytes=]`, `/media/video.mp4?bytes=`). No auth, like a CDN.
 */
import { outputFileName } from "./api.js";
import type { EmulatorCore } from "./core.js";
import { mp4File, mp4SizeProblem } from "./mp4.js";
import { pngDimensionsProblem, pngFile, pngPaddingProblem, solidPng } from "./png.js";
import { text, type Reply } from "./replies.js";

export const DEFAULT_MEDIA_IMAGE_SIDE = 512;

const notFound = (): Reply => text(404, "Not Found\n");

export async function outputFile(core: EmulatorCore, requestId: string, fileName: string): Promise<Reply> {
  let id: string;
  try {
    id = decodeURIComponent(requestId);
  } catch {
    return notFound();
  }
  const request = core.book.get(id);
  if (!request || outputFileName(request.output) !== fileName) return notFound();
  const state = core.stateOf(request);
  if (state === "gone" || state.phase !== "succeeded") return notFound();
  const output = request.output;
  if (output.kind === "video") return { type: "file", file: mp4File(output.bytes) };
  return { type: "file", file: pngFile(await solidPng(output.width, output.height)) };
}

/** A whole number from the query, `fallback` when absent, undefined when malformed. */
function queryNumber(query: URLSearchParams, name: string, fallback?: number): number | undefined {
  const value = query.get(name);
  if (value === null || value === "") return fallback;
  return /^\d+$/.test(value) ? Number(value) : undefined;
}

function badRequest(message: string): Reply {
  return text(400, `${message}\n`);
}

export async function mediaFile(fileName: string, query: URLSearchParams): Promise<Reply> {
  if (fileName === "video.mp4") {
    const bytes = queryNumber(query, "bytes", -1);
    if (bytes === undefined) return badRequest("bytes must be a whole number");
    if (bytes === -1) return { type: "file", file: mp4File() };
    const problem = mp4SizeProblem(bytes);
    return problem ? badRequest(problem) : { type: "file", file: mp4File(bytes) };
  }
  if (fileName === "image.png") {
    const width = queryNumber(query, "w", DEFAULT_MEDIA_IMAGE_SIDE);
    const height = queryNumber(query, "h", DEFAULT_MEDIA_IMAGE_SIDE);
    const bytes = queryNumber(query, "bytes", -1);
    if (width === undefined || height === undefined || bytes === undefined) {
      return badRequest("w, h and bytes must be whole numbers");
    }
    const dimensionsProblem = pngDimensionsProblem(width, height);
    if (dimensionsProblem) return badRequest(dimensionsProblem);
    const png = await solidPng(width, height);
    if (bytes === -1) return { type: "file", file: pngFile(png) };
    const paddingProblem = pngPaddingProblem(png, bytes);
    return paddingProblem ? badRequest(paddingProblem) : { type: "file", file: pngFile(png, bytes) };
  }
  return notFound();
}
