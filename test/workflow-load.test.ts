import path from "node:path";
import { describe, expect, test } from "vitest";
import { WorkflowInvalidError } from "../src/errors.js";
import { checkWorkflow } from "../src/workflow/load.js";
import { WORKFLOW_RULES } from "../src/workflow/rules.js";
import { ALEPH, CHAIN, HAILUO, load, problemsOf, registry, testdir } from "./workflow-testdir.js";

describe("stage (a): YAML syntax", () => {
  test("reports a YAML error at its line and column", async () => {
    expect(await problemsOf("version: 1\njobs:\n  a: [1, 2\n  b: 3\n")).toEqual([
      "4:3: YAML: Flow sequence in block collection must be sufficiently indented and end with a ]",
    ]);
  });

  test("refuses a key written twice in one map, naming the key", async () => {
    const problems = await problemsOf("version: 1\nname: a\nname: b\njobs: {}\n");
    expect(problems).toEqual([
      "3:1: YAML: key `name` appears twice in the same map (keys must be unique; the second would silently win)",
    ]);
  });

  test("refuses an alias bomb quickly instead of expanding it", async () => {
    const levels = ["a: &a [x, x, x, x, x, x, x, x, x]"];
    for (let level = 1; level < 8; level++) {
      const previous = String.fromCharCode(96 + level);
      const name = String.fromCharCode(97 + level);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${previous}`).join(", ")}]`);
    }
    const problems = await problemsOf(`${levels.join("\n")}\n`);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^2:\d+: YAML: the aliases expand to too many values/);
  });

  test("refuses an alias inside the value its own anchor names, at the alias", async () => {
    // Each would be an endless value: before, walking it overflowed the stack (exit 1).
    const inVars = CHAIN.replace("vars:\n  style: noir", "vars: &v\n  style: noir\n  self: *v");
    expect(await problemsOf(inVars)).toEqual([
      "5:9: YAML: the alias `*v` is inside the value its anchor `&v` names, so that value would contain itself without end",
    ]);
    const inInput = CHAIN.replace(
      '        input:\n          prompt: "${{ vars.style }}"',
      "        input: &i\n          prompt: *i",
    );
    expect(await problemsOf(inInput)).toEqual([
      "19:19: YAML: the alias `*i` is inside the value its anchor `&i` names, so that value would contain itself without end",
    ]);
    const inForEach =
      "version: 1\njobs:\n  a:\n    for_each: &f [ { id: x, more: [ *f ] } ]\n    steps:\n      - { id: s, run: [echo] }\n";
    expect(await problemsOf(inForEach)).toEqual([
      "4:37: YAML: the alias `*f` is inside the value its anchor `&f` names, so that value would contain itself without end",
    ]);
    // An alias of a value written before it is fine, even inside another anchored value.
    const shared =
      "version: 1\nvars: { a: &a [1], b: &b { x: *a } }\njobs:\n  j:\n    steps:\n      - { id: s, run: [echo] }\n";
    expect(await problemsOf(shared)).toEqual([]);
  });

  test("refuses lists or maps nested more than 64 levels deep, however deep", async () => {
    // Thousands of levels overflowed the stack of the parts that walk values (exit 1).
    const nested = (depth: number) => `${"[".repeat(depth)}1${"]".repeat(depth)}`;
    const flow = (depth: number) =>
      `version: 1\nvars:\n  deep: ${nested(depth)}\njobs:\n  j:\n    steps:\n      - { id: s, run: [echo] }\n`;
    expect(await problemsOf(flow(60))).toEqual([]);
    expect(await problemsOf(flow(70))).toEqual([
      expect.stringMatching(
        /^3:\d+: vars\.deep\[0\]\[0\]\[0\]\[0\]…: lists or maps nested more than 64 levels deep$/,
      ),
    ]);
    expect(await problemsOf(flow(20_000))).toEqual([
      expect.stringMatching(
        /^3:\d+: YAML: lists or maps nested too deeply \(more than 64 levels are refused\)$/,
      ),
    ]);
  });

  test("puts an indentation error at the misplaced key, not at column 1", async () => {
    const text = CHAIN.replace(
      '          image_url: "${{ item.image }}"',
      '         image_url: "${{ item.image }}"',
    );
    expect(await problemsOf(text)).toEqual(["15:10: YAML: All mapping items must start at the same column"]);
  });

  test("refuses an empty file and an unknown tag", async () => {
    expect(await problemsOf("")).toEqual([
      "1:1: the file is empty; a workflow needs at least `version: 1` and `jobs:`",
    ]);
    expect((await problemsOf("version: 1\nname: !!js/function x\njobs: {}\n"))[0]).toMatch(
      /^2:7: YAML: Unresolved tag/,
    );
  });

  test("says when the workflow file cannot be read", async () => {
    const check = await checkWorkflow("/nonexistent/flow.yaml", { registry, env: {} });
    expect(check.diagnostics.map((d) => d.message)).toEqual([
      "cannot read workflow file /nonexistent/flow.yaml: no such file",
    ]);
  });
});

describe("stage (b): structure", () => {
  test("names an unknown key with a suggestion, at the key", async () => {
    const text = CHAIN.replace("      - id: animate\n        model:", "      - id: animate\n        modle:");
    expect(await problemsOf(text)).toEqual([
      "12:9: jobs.teaser.steps[0]: unknown key `modle` (did you mean `model`?)",
    ]);
  });

  test("writes integer and duration errors as plain sentences with the value", async () => {
    const text = CHAIN.replace(
      "name: chain\n",
      "name: chain\nconcurrency: 0\ndefaults:\n  timeout: 5 minutes\n",
    );
    expect(await problemsOf(text)).toEqual([
      "3:14: concurrency must be an integer ≥ 1, got `0`",
      '5:12: defaults.timeout must be a duration like `10s`, `5m`, `500ms`, `1h`, `6d`, or a number of seconds, got "5 minutes"',
    ]);
  });

  test("a duration that is not text or a number is an error of the file, never a crash", async () => {
    // Normalization reads these too; before, it called .trim() on them (exit 1).
    const text = `version: 1
defaults:
  timeout: [1, 2]
  retry: { backoff: true, max_backoff: { m: 5 } }
  poll: { interval: { s: 1 }, max_interval: [5] }
cache: { ttl: [5] }
jobs:
  j:
    steps:
      - { id: s, run: [echo], timeout: null }
`;
    const problems = await problemsOf(text);
    const help = "must be a duration like `10s`, `5m`, `500ms`, `1h`, `6d`, or a number of seconds";
    expect(problems).toEqual([
      `3:12: defaults.timeout ${help}, got a list`,
      `4:21: defaults.retry.backoff ${help}, got \`true\``,
      `4:40: defaults.retry.max_backoff ${help}, got a map`,
      `5:21: defaults.poll.interval ${help}, got a map`,
      `5:45: defaults.poll.max_interval ${help}, got a list`,
      `6:15: cache.ttl ${help}, got a list`,
      `10:40: jobs.j.steps[0].timeout ${help}, got \`null\``,
    ]);
  });

  test("collapses a step that is neither kind into one message", async () => {
    const problems = await problemsOf("version: 1\njobs:\n  j:\n    steps:\n      - id: a\n        cwd: x\n");
    expect(problems).toEqual([
      "5:9: jobs.j.steps[0]: missing required key `model`",
      "5:9: jobs.j.steps[0]: missing required key `input`",
      "6:9: jobs.j.steps[0]: `cwd` is a key of run steps, not of model steps",
    ]);
  });

  test("says a step cannot be both kinds, once", async () => {
    const problems = await problemsOf(
      `version: 1\njobs:\n  j:\n    steps:\n      - id: a\n        model: ${HAILUO}\n        input: {}\n        run: [echo]\n`,
    );
    expect(problems).toEqual([
      "6:9: jobs.j.steps[0]: a step has either `model` (a model step) or `run` (a run step), not both",
    ]);
  });

  test("explains a for_each of the wrong kind", async () => {
    const problems = await problemsOf(
      "version: 1\njobs:\n  j:\n    for_each: 3\n    steps: [{ id: a, run: [echo] }]\n",
    );
    expect(problems).toEqual(["4:15: jobs.j.for_each must be text, a list, a map, got `3`"]);
  });

  test("refuses version 2 and a bad job id", async () => {
    const problems = await problemsOf("version: 2\njobs:\n  bad id:\n    steps: [{ id: a, run: [echo] }]\n");
    expect(problems).toEqual([
      "1:10: version must be 1, got `2`",
      "3:3: jobs: job id `bad id` must contain only letters, digits, `_` and `-` (and not start with `-`)",
    ]);
  });
});

describe("stage (c): normalization", () => {
  test("applies every default and converts durations to milliseconds", async () => {
    const workflow = await load(CHAIN);
    expect(workflow).toMatchObject({
      version: 1,
      name: "chain",
      concurrency: 8,
      limits: {},
      defaults: {
        retry: { attempts: 3, backoffMs: 10_000, maxBackoffMs: 300_000, resubmitUnknown: false },
        timeoutMs: 1_800_000,
        poll: { intervalMs: undefined, maxIntervalMs: undefined },
      },
      outputs: "outputs/${{ workflow.name }}/${{ job.key }}",
      cache: { ttlMs: 6 * 86_400_000 },
    });
    expect(path.isAbsolute(workflow.file)).toBe(true);
  });

  test("merges a step's retry over the defaults, field by field", async () => {
    const text = CHAIN.replace(
      "name: chain\n",
      "name: chain\ndefaults:\n  retry: { attempts: 5, backoff: 2s }\n  timeout: 1h\ncache: { ttl: 1d }\n",
    ).replace(
      "      - id: restyle\n",
      "      - id: restyle\n        retry: { max_backoff: 90s, resubmit_unknown: true }\n        timeout: 90\n",
    );
    const workflow = await load(text);
    const [animate, restyle] = workflow.jobs[0]!.steps;
    expect(animate).toMatchObject({
      retry: { attempts: 5, backoffMs: 2_000, maxBackoffMs: 300_000 },
      timeoutMs: 3_600_000,
    });
    expect(restyle).toMatchObject({
      retry: { attempts: 5, backoffMs: 2_000, maxBackoffMs: 90_000, resubmitUnknown: true },
      timeoutMs: 90_000,
    });
    expect(workflow.cache.ttlMs).toBe(86_400_000);
  });

  test("orders steps by dependency and records what each waits for", async () => {
    const text = `version: 1
jobs:
  j:
    steps:
      - id: poster
        run: [ffmpeg, -i, "\${{ steps.restyle.files.video }}", poster.jpg]
      - id: restyle
        model: ${ALEPH}
        needs: [animate]
        input: { prompt: p, video_url: "\${{ steps.animate.output.video }}" }
      - id: animate
        model: ${HAILUO}
        input: { prompt: p, image_url: "https://example.com/a.png" }
`;
    const workflow = await load(text);
    const steps = workflow.jobs[0]!.steps;
    expect(steps.map((step) => step.id)).toEqual(["animate", "restyle", "poster"]);
    expect(steps.map((step) => step.dependsOn)).toEqual([[], ["animate"], ["restyle"]]);
    expect(steps[1]).toMatchObject({ kind: "model", deferredFields: ["video_url"] });
  });

  test("names a workflow without `name` after its file", async () => {
    const dir = testdir({
      "night-batch.yaml": "version: 1\njobs:\n  j:\n    steps: [{ id: a, run: [echo] }]\n",
    });
    const check = await checkWorkflow(path.join(dir, "night-batch.yaml"), { registry, env: {} });
    expect(check.workflow?.name).toBe("night-batch");
  });

  test("gives a job without for_each one instance keyed by the job id", async () => {
    const workflow = await load("version: 1\njobs:\n  once:\n    steps: [{ id: a, run: [echo, hi] }]\n");
    expect(workflow.jobs[0]!.instances).toEqual([{ key: "once", item: {}, origin: undefined }]);
  });

  test("applies --var overrides over the file's vars, and keeps only the env the templates read", async () => {
    const text = CHAIN.replace('"${{ vars.style }}"', '"${{ vars.style }} ${{ env.LOOK }}"');
    const workflow = await load(
      text,
      {},
      { vars: { style: "anime" }, env: { LOOK: "grainy", OTHER: "x", RUNCOMFY_API_TOKEN: "t" } },
    );
    expect(workflow.vars).toEqual({ style: "anime" });
    expect(workflow.env).toEqual({ LOOK: "grainy" });
  });
});

describe("stage (d): the named rules", () => {
  test("lists its rules by name", () => {
    expect(WORKFLOW_RULES.map((rule) => rule.name)).toEqual([
      "template-syntax",
      "template-roots",
      "token-variable",
      "run-program",
      "vars-and-env",
      "var-overrides",
      "duplicate-step-ids",
      "step-references",
      "step-cycles",
      "known-models",
      "for-each-files",
      "item-needs-for-each",
      "waits-in-range",
      "default-name",
    ]);
  });

  test("template-syntax: an unclosed template, and a template where none is expanded", async () => {
    const text = CHAIN.replace('"${{ item.prompt }}"', '"${{ item.prompt"').replace(
      "style: noir",
      'style: "${{ item.x }}"',
    );
    expect(await problemsOf(text)).toEqual([
      "4:10: vars.style: templates are not expanded in `vars` (values are taken literally)",
      "14:19: jobs.teaser.steps[0].input.prompt: `${{ item.prompt`: `${{` is not closed by `}}`",
    ]);
  });

  test("template-roots: unknown roots, and roots a place may not read", async () => {
    const text = CHAIN.replace(
      "name: chain\n",
      'name: chain\noutputs: "out/${{ steps.animate.request_id }}"\n',
    ).replace('"${{ item.image }}"', '"${{ itme.image }}${{ job.name }}"');
    expect(await problemsOf(text)).toEqual([
      "3:10: outputs: ${{ steps.animate.request_id }} cannot be used here; `outputs` may read `item`, `vars`, `workflow`, `job`, `run`, `env`",
      "16:22: jobs.teaser.steps[0].input.image_url: ${{ itme.image }} reads unknown root `itme` (did you mean `item`?)",
      "16:22: jobs.teaser.steps[0].input.image_url: ${{ job.name }}: `job` has `job.id`, `job.key`",
    ]);
  });

  test("token-variable: a template that reads the API token, under either name", async () => {
    const text = CHAIN.replace(
      '"${{ vars.style }}"',
      '"${{ env.RUNCOMFY_API_TOKEN }} ${{ env.YOUR_API_TOKEN }}"',
    );
    const problems = await problemsOf(text, {}, { env: { RUNCOMFY_API_TOKEN: "secret" } });
    expect(problems).toEqual([
      "19:19: jobs.teaser.steps[1].input.prompt: ${{ env.RUNCOMFY_API_TOKEN }} reads the API token; the token is never readable in templates",
      "19:19: jobs.teaser.steps[1].input.prompt: ${{ env.YOUR_API_TOKEN }} reads the API token; the token is never readable in templates",
    ]);
    expect(problems.join("\n")).not.toContain("secret");
  });

  test("run-program: a run step's program comes from the workflow or vars, never items, steps or env", async () => {
    const text = `version: 1
vars: { tool: ffmpeg }
jobs:
  j:
    for_each: [{ prog: /bin/sh, arg: -c }]
    steps:
      - { id: a, run: ["\${{ item.prog }}", "\${{ item.arg }}"] }
      - { id: b, run: ["/usr/bin/\${{ steps.a.stdout }}"] }
      - { id: c, run: ["\${{ env.HOME }}/bin/tool"] }
      - { id: d, run: ["\${{ job.key }}"] }
      - { id: e, run: ["\${{ vars.tool }}", "-i", "\${{ item.prog }}"] }
      - { id: f, run: [echo, "\${{ item.prog }}"] }
`;
    const help = "it must be written in the workflow or read from `vars`";
    expect(await problemsOf(text, {}, { env: { HOME: "/home/u" } })).toEqual([
      `7:24: jobs.j.steps[0].run[0]: the program to run cannot come from \${{ item.prog }}; ${help}`,
      `8:24: jobs.j.steps[1].run[0]: the program to run cannot come from \${{ steps.a.stdout }}; ${help}`,
      `9:24: jobs.j.steps[2].run[0]: the program to run cannot come from \${{ env.HOME }}; ${help}`,
      `10:24: jobs.j.steps[3].run[0]: the program to run cannot come from \${{ job.key }}; ${help}`,
    ]);
    // A --var override is the user's own choice, like the file's vars.
    const fromVar = await load(text.replace(/ {6}- \{ id: [a-d],.*\n/g, ""), {}, { vars: { tool: "sox" } });
    expect(fromVar.jobs[0]!.steps.map((step) => (step.kind === "run" ? step.run : []))).toEqual([
      ["${{ vars.tool }}", "-i", "${{ item.prog }}"],
      ["echo", "${{ item.prog }}"],
    ]);
  });

  test("vars-and-env: an undeclared var and an unset environment variable", async () => {
    const text = CHAIN.replace('"${{ vars.style }}"', '"${{ vars.stlye }} ${{ env.LOOK }}"');
    expect(await problemsOf(text)).toEqual([
      "19:19: jobs.teaser.steps[1].input.prompt: ${{ vars.stlye }}: vars has no `stlye` (did you mean `style`?)",
      "19:19: jobs.teaser.steps[1].input.prompt: ${{ env.LOOK }}: the environment variable `LOOK` is not set",
    ]);
  });

  test("var-overrides: a --var the workflow neither declares nor reads", async () => {
    expect(await problemsOf(CHAIN, {}, { vars: { styel: "x" } })).toEqual([
      "4:3: --var styel: the workflow has no var `styel` (did you mean `style`?)",
    ]);
  });

  test("duplicate-step-ids: names both steps", async () => {
    const text = CHAIN.replace("      - id: restyle\n", "      - id: animate\n");
    expect(await problemsOf(text)).toEqual([
      "16:13: jobs.teaser.steps[1]: step id `animate` is already used by jobs.teaser.steps[0]",
    ]);
  });

  test("step-references: unknown steps in templates and needs, other jobs' steps, and fields a step lacks", async () => {
    const text = `version: 1
jobs:
  other:
    steps: [{ id: elsewhere, run: [echo] }]
  j:
    steps:
      - id: a
        run: [echo, "\${{ steps.elsewhere.stdout }}"]
        outputs: { out: out.txt }
      - id: b
        needs: [a, c]
        run: [cat, "\${{ steps.a.files.missing }}", "\${{ steps.a.request_id }}", "\${{ steps.a.outptu }}"]
`;
    expect(await problemsOf(text)).toEqual([
      "8:21: jobs.j.steps[0].run[1]: ${{ steps.elsewhere.stdout }}: step `elsewhere` is in job `other`; a step can only use steps of its own job",
      "11:20: jobs.j.steps[1].needs: job `j` has no step `c` (its steps: `a`, `b`)",
      "12:20: jobs.j.steps[1].run[1]: ${{ steps.a.files.missing }}: run step `a` declares no output `missing` (its outputs: `out`)",
      "12:52: jobs.j.steps[1].run[2]: ${{ steps.a.request_id }}: `a` is a run step; it has `files` and `stdout`, not `request_id`",
      "12:81: jobs.j.steps[1].run[3]: ${{ steps.a.outptu }}: steps have `output`, `files`, `request_id`, `stdout` (did you mean `output`?)",
    ]);
  });

  test("step-references: an output the model does not have", async () => {
    const text = CHAIN.replace("steps.animate.output.video", "steps.animate.output.vdeo");
    expect(await problemsOf(text)).toEqual([
      "20:22: jobs.teaser.steps[1].input.video_url: ${{ steps.animate.output.vdeo }}: model `minimax/Hailuo Video 01 Live` has no output `vdeo` (did you mean `video`?)",
    ]);
  });

  test("step-cycles: names the cycle, including a step that reads itself", async () => {
    const text = `version: 1
jobs:
  j:
    steps:
      - id: a
        needs: [b]
        run: [echo]
      - id: b
        run: [echo, "\${{ steps.a.stdout }}"]
      - id: c
        run: [echo, "\${{ steps.c.stdout }}"]
`;
    expect(await problemsOf(text)).toEqual([
      expect.stringMatching(/^5:13: jobs\.j: the steps form a cycle: a → b → a$/),
      expect.stringMatching(/^10:13: jobs\.j: the steps form a cycle: c → c$/),
    ]);
  });

  test("known-models: an unknown model, with the registry's suggestion, in a step and in limits", async () => {
    const text = CHAIN.replace(`model: ${HAILUO}`, "model: minimax/hailuo video 01 live").replace(
      "name: chain\n",
      "name: chain\nlimits:\n  runway/aleph: 1\n",
    );
    const problems = await problemsOf(text);
    expect(problems).toEqual([
      '4:3: limits: no schema for model "runway/aleph"',
      `14:16: jobs.teaser.steps[0].model: no schema for model "minimax/hailuo video 01 live"; did you mean "${HAILUO}"?`,
    ]);
  });

  test("for-each-files: a path that is neither .csv nor .jsonl, and a file that is missing", async () => {
    const text =
      "version: 1\njobs:\n  a:\n    for_each: items.txt\n    steps: [{ id: s, run: [echo] }]\n  b:\n    for_each: items/none.csv\n    steps: [{ id: s, run: [echo] }]\n";
    const problems = await problemsOf(text);
    expect(problems[0]).toBe('4:15: jobs.a.for_each: "items.txt" is neither a .csv nor a .jsonl file');
    expect(problems[1]).toMatch(
      /^7:15: jobs\.b\.for_each: items file "items\/none\.csv" not found \(looked for .*items\/none\.csv\)$/,
    );
  });

  test("item-needs-for-each: `item` in a job that has no for_each", async () => {
    const text = 'version: 1\njobs:\n  once:\n    steps: [{ id: s, run: [echo, "${{ item.id }}"] }]\n';
    expect(await problemsOf(text)).toEqual([
      "4:34: jobs.once.steps[0].run[1]: ${{ item.id }}: job `once` has no `for_each`, so there is no `item`",
    ]);
  });

  test("default-name: a file name that cannot be a workflow name", async () => {
    const dir = testdir({
      "my batch.yaml": "version: 1\njobs:\n  j:\n    steps: [{ id: a, run: [echo] }]\n",
    });
    const check = await checkWorkflow(path.join(dir, "my batch.yaml"), { registry, env: {} });
    expect(check.diagnostics.map((d) => d.message)).toEqual([
      'the workflow has no `name`, and its file name "my batch" cannot be one (letters, digits, `.`, `_` and `-` only)',
    ]);
  });
});

describe("stage (e): model inputs per instance", () => {
  test("reports the row whose value breaks the model's schema, and only that row", async () => {
    const rows = ["id,prompt,image"];
    for (let row = 1; row <= 40; row++) {
      const prompt = row === 37 ? "x".repeat(2000) : `prompt ${row}`;
      rows.push(`r${row},${prompt},https://example.com/${row}.png`);
    }
    const text = CHAIN.replace(/for_each:\n.*\n.*\n/, "for_each: items/rows.csv\n");
    expect(await problemsOf(text, { "items/rows.csv": `${rows.join("\n")}\n` })).toEqual([
      "items/rows.csv:38:1: jobs.teaser.steps[0] (animate), instance teaser/r37 (row 37): input.prompt is longer than 1995 characters (2000)",
    ]);
  });

  test("reports a problem of the workflow text once, not per instance", async () => {
    const text = CHAIN.replace(
      'image_url: "${{ item.image }}"',
      'image_url: "${{ item.image }}"\n          prompt_optimizer: "yes"',
    );
    expect(await problemsOf(text)).toEqual([
      '16:29: jobs.teaser.steps[0] (animate): input.prompt_optimizer must be a boolean (got "yes")',
    ]);
  });

  test("points at the template when no item has the field it reads", async () => {
    const text = CHAIN.replace("item.image", "item.imge");
    expect(await problemsOf(text)).toEqual([
      "15:22: jobs.teaser.steps[0] (animate): input.image_url: ${{ item.imge }}: `item` has no field `imge` (it has `id`, `prompt`, `image`) (in all 2 instances)",
    ]);
  });

  test("refuses a static http media URL off loopback, and allows it on loopback", async () => {
    const text = CHAIN.replace('"${{ item.image }}"', '"http://cdn.example.com/a.png"');
    expect(await problemsOf(text)).toEqual([
      "15:22: jobs.teaser.steps[0] (animate): input.image_url: http://cdn.example.com/a.png uses plain http; media inputs must be https (http is allowed only on loopback)",
    ]);
    expect(
      await problemsOf(CHAIN.replace('"${{ item.image }}"', '"http://127.0.0.1:8787/media/image.png"')),
    ).toEqual([]);
  });

  test("defers a field read from an earlier step, and checks the rest", async () => {
    const text = CHAIN.replace("video_url:", "ratio: '1920:1080'\n          video_url:");
    const problems = await problemsOf(text);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^20:18: jobs\.teaser\.steps\[1\] \(restyle\): input\.ratio must be one of/);
  });

  test("still checks the model inputs of a job that has a reference problem elsewhere", async () => {
    const text = CHAIN.replace("steps.animate.", "steps.animat.").replace(
      "video_url:",
      "ratio: '1920:1080'\n          video_url:",
    );
    const problems = await problemsOf(text);
    expect(problems.map((p) => p.slice(0, 6))).toEqual(["20:18:", "21:22:"]);
  });
});

describe("loadWorkflow", () => {
  test("throws WorkflowInvalidError carrying every diagnostic", async () => {
    const text = CHAIN.replace("name: chain\n", "name: chain\nconcurrency: 0\n").replace(
      "vars.style",
      "vars.stlye",
    );
    const error = await load(text).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(WorkflowInvalidError);
    expect((error as WorkflowInvalidError).diagnostics).toHaveLength(2);
    expect((error as WorkflowInvalidError).exitCode).toBe(2);
  });
});
