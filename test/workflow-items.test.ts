import path from "node:path";
import { describe, expect, test } from "vitest";
import { expandInstances, instanceKeyProblem, type ExpansionInput } from "../src/workflow/expand.js";
import { matrixItems, parseCsvItems, parseJsonlItems } from "../src/workflow/items.js";
import { checkWorkflow } from "../src/workflow/load.js";
import { load, problemsOf, registry, testdir } from "./workflow-testdir.js";

describe("CSV items", () => {
  test("reads quoted fields with commas, doubled quotes and newlines, and gives each row its first line", () => {
    const text = 'id,prompt\ncat,"a ""cat"", on a\nskateboard"\ndog,plain\n';
    const { items, diagnostics } = parseCsvItems(text, "items.csv");
    expect(diagnostics).toEqual([]);
    expect(items).toEqual([
      {
        item: { id: "cat", prompt: 'a "cat", on a\nskateboard' },
        origin: { file: "items.csv", line: 2, column: 1 },
      },
      { item: { id: "dog", prompt: "plain" }, origin: { file: "items.csv", line: 4, column: 1 } },
    ]);
  });

  test("ignores a UTF-8 BOM, blank lines and CRLF line ends", () => {
    const { items, diagnostics } = parseCsvItems("\uFEFFid,n\r\na,1\r\n\r\nb,2\r\n", "items.csv");
    expect(diagnostics).toEqual([]);
    expect(items.map(({ item }) => item)).toEqual([
      { id: "a", n: "1" },
      { id: "b", n: "2" },
    ]);
    expect(Object.keys(items[0]!.item)).toEqual(["id", "n"]);
  });

  test("reports every row with the wrong number of fields, by row and line", () => {
    const { diagnostics } = parseCsvItems("id,prompt,image\ncat,a, b,c\ndog,b,x\nfox\n", "items.csv");
    expect(diagnostics.map((d) => `${d.location?.line}: ${d.message}`)).toEqual([
      "2: row 1 has 4 fields, but the header has 3",
      "4: row 3 has 1 field, but the header has 3",
    ]);
  });

  test("reports an unclosed quote, a header naming a column twice, and an empty file", () => {
    expect(parseCsvItems('id,prompt\ncat,"open\n', "i.csv").diagnostics[0]).toMatchObject({
      message: expect.stringContaining("Quote Not Closed") as string,
      location: { file: "i.csv", line: 2 },
    });
    expect(parseCsvItems("id,id\n1,2\n", "i.csv").diagnostics.map((d) => d.message)).toEqual([
      "the header names column `id` twice (columns 1 and 2)",
    ]);
    expect(parseCsvItems("", "i.csv").diagnostics.map((d) => d.message)[0]).toMatch(/the CSV file is empty/);
    expect(parseCsvItems("id\n", "i.csv").diagnostics.map((d) => d.message)[0]).toMatch(
      /has a header but no rows/,
    );
  });

  test("keeps a column named __proto__ as a field, not a prototype", () => {
    const { items } = parseCsvItems("__proto__,id\npolluted,1\n", "i.csv");
    const item = items[0]!.item;
    expect(Object.getPrototypeOf(item)).toBe(Object.prototype);
    expect(Object.hasOwn(item, "__proto__")).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("JSONL items", () => {
  test("reads one object per line and skips blank lines", () => {
    const { items, diagnostics } = parseJsonlItems(
      '{"id":"a","n":1}\n\n  \n{"id":"b","tags":["x"]}\n',
      "i.jsonl",
    );
    expect(diagnostics).toEqual([]);
    expect(items).toEqual([
      { item: { id: "a", n: 1 }, origin: { file: "i.jsonl", line: 1, column: 1 } },
      { item: { id: "b", tags: ["x"] }, origin: { file: "i.jsonl", line: 4, column: 1 } },
    ]);
  });

  test("reports a bad line with its line and column, and a line that is not an object", () => {
    const { diagnostics } = parseJsonlItems('{"id":"a"}\n{"id": "b",}\n[1,2]\n', "i.jsonl");
    expect(diagnostics.map((d) => `${d.location?.line}:${d.location?.column}: ${d.message}`)).toEqual([
      "2:12: line 2 is not valid JSON: Expected double-quoted property name",
      "3:1: line 3 must be a JSON object (one item per line), got a list",
    ]);
  });
});

describe("matrix items", () => {
  test("is the cartesian product, the first field varying slowest", () => {
    expect(matrixItems({ style: ["noir", "anime"], ratio: ["16:9", "1:1", "9:16"] })).toEqual([
      { style: "noir", ratio: "16:9" },
      { style: "noir", ratio: "1:1" },
      { style: "noir", ratio: "9:16" },
      { style: "anime", ratio: "16:9" },
      { style: "anime", ratio: "1:1" },
      { style: "anime", ratio: "9:16" },
    ]);
  });
});

describe("instance keys", () => {
  const base = (items: Record<string, unknown>[], keyTemplate?: string): ExpansionInput => ({
    jobId: "j",
    kind: "list",
    items: items.map((item, index) => ({ item, origin: { file: "f.yaml", line: 10 + index, column: 7 } })),
    keyTemplate,
    jobLocation: { file: "f.yaml", line: 9, column: 5 },
    context: { vars: { prefix: "v" }, workflow: { name: "w" }, env: {} },
  });

  test("default to the item's id, else its 1-based position", () => {
    const { instances } = expandInstances(base([{ id: "cat" }, { name: "x" }, { id: 7 }]));
    expect(instances.map((instance) => instance.key)).toEqual(["cat", "2", "7"]);
  });

  test("render the key template with the item, vars and job id", () => {
    const { instances } = expandInstances(
      base([{ n: 1 }, { n: 2 }], "${{ vars.prefix }}-${{ job.id }}-${{ item.n }}"),
    );
    expect(instances.map((instance) => instance.key)).toEqual(["v-j-1", "v-j-2"]);
  });

  test("refuse a duplicate key, naming both items", () => {
    const { diagnostics } = expandInstances(base([{ id: "cat" }, { id: "dog" }, { id: "cat" }]));
    expect(diagnostics).toEqual([
      expect.objectContaining({
        message: 'jobs.j: instance key "cat" is used by both item 1 (f.yaml:10) and item 3 (f.yaml:12)',
        location: { file: "f.yaml", line: 12, column: 7 },
      }),
    ]);
  });

  test("refuse keys that are not safe folder names, rather than rewriting them", () => {
    const { diagnostics } = expandInstances(
      base([{ id: "../etc" }, { id: "a/b" }, { id: ".." }, { id: "x\ny" }, { id: "" }]),
    );
    expect(diagnostics.map((d) => d.message)).toEqual([
      'jobs.j, item 1: instance key "../etc" contains `/` or `\\` (keys become folder names)',
      'jobs.j, item 2: instance key "a/b" contains `/` or `\\` (keys become folder names)',
      'jobs.j, item 3: instance key ".." `..` is not a usable folder name',
      'jobs.j, item 4: instance key "x\\ny" contains a control character',
      // An empty id is no id: the position stands in.
    ]);
    expect(instanceKeyProblem("")).toBe("is empty");
    expect(instanceKeyProblem(" cat")).toBe("starts or ends with a space");
    expect(instanceKeyProblem("cat-01")).toBeUndefined();
  });

  test("report a key template that reads a missing field, per item", () => {
    const { diagnostics } = expandInstances(base([{ id: "a" }], "${{ item.slug }}"));
    expect(diagnostics[0]?.message).toBe(
      "jobs.j, item 1: key ${{ item.slug }}: `item` has no field `slug` (it has `id`)",
    );
  });
});

describe("expansion through the loader", () => {
  const flow = (forEach: string, key = "") => `version: 1
jobs:
  j:
    for_each: ${forEach}
${key}    steps:
      - id: s
        run: [echo, "\${{ item.id }}"]
`;

  test("expands a CSV file relative to the workflow file", async () => {
    const workflow = await load(flow("data/items.csv"), { "data/items.csv": "id,x\na,1\nb,2\n" });
    expect(workflow.jobs[0]!.instances.map((instance) => [instance.key, instance.origin?.line])).toEqual([
      ["a", 2],
      ["b", 3],
    ]);
  });

  test("expands a JSONL file and a matrix", async () => {
    const jsonl = await load(flow("items.jsonl"), { "items.jsonl": '{"id":"a"}\n{"id":"b"}\n' });
    expect(jsonl.jobs[0]!.instances.map((instance) => instance.key)).toEqual(["a", "b"]);
    const matrix = await load(
      flow("{ matrix: { id: [x, y], n: [1, 2] } }", '    key: "${{ item.id }}${{ item.n }}"\n'),
    );
    expect(matrix.jobs[0]!.instances.map((instance) => instance.key)).toEqual(["x1", "x2", "y1", "y2"]);
  });

  test("locates a bad CSV row in the items file", async () => {
    expect(await problemsOf(flow("items.csv"), { "items.csv": "id,x\na,1\nb,2,3\n" })).toEqual([
      "items.csv:3:1: row 2 has 3 fields, but the header has 2",
    ]);
  });

  test("locates a duplicate key from CSV rows at the second row", async () => {
    expect(await problemsOf(flow("items.csv"), { "items.csv": "id,x\na,1\nb,2\na,3\n" })).toEqual([
      expect.stringMatching(
        /^items\.csv:4:1: jobs\.j: instance key "a" is used by both row 1 \(.*items\.csv:2\) and row 3 \(.*items\.csv:4\)$/,
      ),
    ]);
  });

  test("refuses a row whose every field is empty, in CSV and JSONL, at its line", async () => {
    // `,` used to become an item with an empty prompt, submitted and billed.
    const csv = "id,prompt\na,a cat\n,\n\n , \nb,a dog\n";
    expect(await problemsOf(flow("items.csv"), { "items.csv": csv })).toEqual([
      "items.csv:3:1: row 2 is empty: every field of it is empty",
      "items.csv:5:1: row 3 is empty: every field of it is empty",
    ]);
    const jsonl = '{"id":"a"}\n{}\n{"id":"","prompt":null}\n';
    expect(await problemsOf(flow("items.jsonl"), { "items.jsonl": jsonl })).toEqual([
      "items.jsonl:2:1: line 2 is an empty item: it has no field with a value",
      "items.jsonl:3:1: line 3 is an empty item: it has no field with a value",
    ]);
  });

  test("refuses a JSONL item nested more than 64 levels deep, at its line", async () => {
    // 5,000 levels overflowed the stack of the input checks (exit 1).
    const deep = (depth: number) => `{"id":"b","p":${"[".repeat(depth)}1${"]".repeat(depth)}}`;
    const jsonl = `{"id":"a"}\n${deep(5_000)}\n${deep(63)}\n`;
    expect(await problemsOf(flow("items.jsonl"), { "items.jsonl": jsonl })).toEqual([
      "items.jsonl:2:1: line 2 nests lists or maps more than 64 levels deep",
    ]);
  });

  test("refuses items files and a workflow file that are not UTF-8, at the first bad byte", async () => {
    // Latin-1 `café` used to be read as `caf\uFFFD` and submitted as such.
    const latin1 = Buffer.concat([
      Buffer.from("id,prompt\na,ok\nb,un caf"),
      Buffer.from([0xe9]),
      Buffer.from("\n"),
    ]);
    expect(await problemsOf(flow("items.csv"), { "items.csv": latin1 })).toEqual([
      'items.csv:3:9: items file "items.csv" is not UTF-8 text: line 3 has the byte 0xE9, which UTF-8 does not allow there',
    ]);
    const jsonl = Buffer.concat([
      Buffer.from('{"id":"a","p":"caf'),
      Buffer.from([0xe9]),
      Buffer.from('"}\n'),
    ]);
    expect(await problemsOf(flow("items.jsonl"), { "items.jsonl": jsonl })).toEqual([
      'items.jsonl:1:19: items file "items.jsonl" is not UTF-8 text: line 1 has the byte 0xE9, which UTF-8 does not allow there',
    ]);
    // Real UTF-8 (a BOM, accents, emoji) is read as written.
    const utf8 = await load(flow("items.csv"), { "items.csv": "\uFEFFid,prompt\na,café ☕ 🐈\n" });
    expect(utf8.jobs[0]!.instances[0]!.item).toEqual({ id: "a", prompt: "café ☕ 🐈" });

    const dir = testdir({
      "flow.yaml": Buffer.concat([
        Buffer.from("version: 1\nname: caf"),
        Buffer.from([0xe9]),
        Buffer.from("\njobs: {}\n"),
      ]),
    });
    const check = await checkWorkflow(path.join(dir, "flow.yaml"), { registry, env: {} });
    expect(check.diagnostics).toEqual([
      expect.objectContaining({
        message:
          "the workflow file is not UTF-8 text: line 2 has the byte 0xE9, which UTF-8 does not allow there",
        location: { file: path.join(dir, "flow.yaml"), line: 2, column: 10 },
      }),
    ]);
  });
});
