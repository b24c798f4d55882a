// The baseline the benchmarks compare runflow with: what a careful hand-written script does
// against the RunComfy Model API — submit, poll /status every 2 s (as RunComfy's own CLI
// does), fetch /result, download the output — with a fixed pool of `concurrency` workers.
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const TERMINAL = new Set(["completed", "succeeded", "failed", "cancelled", "canceled"]);

function modelPath(modelId) {
  return modelId.split("/").map(encodeURIComponent).join("/");
}

export async function runBaseline({ baseUrl, token, model, bodies, concurrency, outDir, pollMs = 2_000 }) {
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  await mkdir(outDir, { recursive: true });
  let next = 0;
  let succeeded = 0;
  const worker = async () => {
    while (next < bodies.length) {
      const index = next++;
      const submitted = await (
        await fetch(`${baseUrl}/v1/models/${modelPath(model)}`, {
          method: "POST",
          headers,
          body: JSON.stringify(bodies[index]),
        })
      ).json();
      for (;;) {
        await sleep(pollMs);
        const status = await (await fetch(submitted.status_url, { headers })).json();
        if (TERMINAL.has(status.status)) break;
      }
      const result = await (await fetch(submitted.result_url, { headers })).json();
      if (result.status !== "succeeded") continue;
      const media = await fetch(result.output.video);
      await writeFile(path.join(outDir, `${index}.mp4`), Buffer.from(await media.arrayBuffer()));
      succeeded++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { succeeded };
}

// Run as a script, as the whole-process benchmarks time it (bench/whole-process.js):
//   RUNCOMFY_BASE_URL=… RUNCOMFY_API_TOKEN=… node bench/baseline.js COUNT CONCURRENCY OUT_DIR
// submits the benchmarks' batch of COUNT steps (bench/lib.js) and exits 1 unless all succeed.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [count, concurrency, outDir] = process.argv.slice(2);
  const { batchBodies, HAILUO } = await import("./lib.js");
  const baseUrl = process.env.RUNCOMFY_BASE_URL;
  const { succeeded } = await runBaseline({
    baseUrl,
    token: process.env.RUNCOMFY_API_TOKEN,
    model: HAILUO,
    bodies: batchBodies(Number(count), baseUrl),
    concurrency: Number(concurrency),
    outDir,
  });
  process.exitCode = succeeded === Number(count) ? 0 : 1;
}
