import { describe, expect, test } from "vitest";
import { escapeTemplateText, parseTemplate, TemplateSyntaxError } from "../src/template/parse.js";
import {
  deferredFields,
  referencedSteps,
  resolveKnown,
  resolveValue,
  TemplateResolutionError,
  type TemplateContext,
} from "../src/template/resolve.js";

function context(overrides: Partial<TemplateContext> = {}): TemplateContext {
  return {
    item: { id: "cat", prompt: "a cat", n: 3, tags: ["a", "b"], "first name": "Tom", meta: { w: 1280 } },
    vars: { style: "noir", nested: { list: [10, 20] } },
    workflow: { name: "teasers" },
    job: { id: "teaser", key: "cat" },
    run: { id: "run-1", date: "2025-01-02" },
    env: { HOME: "/home/me", RUNCOMFY_API_TOKEN: "secret-token", YOUR_API_TOKEN: "secret-token" },
    steps: {},
    ...overrides,
  };
}

function failure(run: () => unknown): TemplateResolutionError {
  try {
    run();
  } catch (error) {
    if (error instanceof TemplateResolutionError) return error;
    throw error;
  }
  throw new Error("expected a TemplateResolutionError");
}

describe("parseTemplate", () => {
  test("splits text and references, and reads dotted, indexed and quoted paths", () => {
    const parsed = parseTemplate(`a \${{ item.tags[1] }} b \${{ item["first name"] }}`);
    expect(parsed.single).toBeUndefined();
    expect(parsed.parts).toEqual([
      { text: "a " },
      { ref: { source: "${{ item.tags[1] }}", root: "item", path: ["tags", 1] } },
      { text: " b " },
      { ref: { source: '${{ item["first name"] }}', root: "item", path: ["first name"] } },
    ]);
  });

  test("marks a string that is exactly one template", () => {
    expect(parseTemplate("${{ steps.animate.output.video }}").single?.path).toEqual([
      "animate",
      "output",
      "video",
    ]);
  });

  test.each([
    ["${{ item.prompt", "not closed"],
    ["${{ }}", "empty"],
    ["${{ item.prompt | upper }}", "no operators"],
    ["${{ item.a() }}", "no operators"],
    ["${{ 1 + 2 }}", "no operators"],
    ["${{ item. }}", "expected a name"],
  ])("refuses %s", (text, reason) => {
    expect(() => parseTemplate(text)).toThrow(TemplateSyntaxError);
    expect(() => parseTemplate(text)).toThrow(reason);
  });

  test("reads $${{ as a literal ${{, and escapeTemplateText round-trips any text", () => {
    expect(parseTemplate("cost: $${{ item.x }}").parts).toEqual([{ text: "cost: ${{ item.x }}" }]);
    for (const text of ["${{ env.HOME }}", "$${{ x }}", "a ${{ b }} c ${{", "plain"]) {
      const parsed = parseTemplate(escapeTemplateText(text));
      expect(parsed.parts.map((part) => part.text ?? "").join("")).toBe(text);
      expect(parsed.parts.every((part) => part.ref === undefined)).toBe(true);
    }
  });
});

describe("resolveValue", () => {
  test("keeps the value's type when the string is exactly one template", () => {
    expect(resolveValue("${{ item.n }}", context())).toBe(3);
    expect(resolveValue("${{ item.tags }}", context())).toEqual(["a", "b"]);
    expect(resolveValue("${{ vars.nested.list[1] }}", context())).toBe(20);
  });

  test("interpolates as text otherwise: numbers as digits, lists and maps as JSON", () => {
    expect(resolveValue("n=${{ item.n }} tags=${{ item.tags }} meta=${{ item.meta }}", context())).toBe(
      'n=3 tags=["a","b"] meta={"w":1280}',
    );
    expect(resolveValue(" ${{ item.n }}", context())).toBe(" 3");
  });

  test("resolves deep inside maps and lists, and shares what has no template", () => {
    const value = {
      a: ["${{ workflow.name }}", "${{ job.key }}"],
      b: { c: "${{ run.date }}" },
      fixed: { x: 1 },
    };
    const resolved = resolveValue(value, context()) as typeof value;
    expect(resolved).toEqual({ a: ["teasers", "cat"], b: { c: "2025-01-02" }, fixed: { x: 1 } });
    expect(resolved.fixed).toBe(value.fixed);
  });

  test("reads keys with spaces by quoted index, and env variables", () => {
    expect(resolveValue('${{ item["first name"] }} in ${{ env.HOME }}', context())).toBe("Tom in /home/me");
  });

  test("names the template and the missing field, with the fields that exist", () => {
    const error = failure(() => resolveValue("${{ item.promt }}", context()));
    expect(error.template).toBe("${{ item.promt }}");
    expect(error.message).toContain("`item` has no field `promt`");
    expect(error.message).toContain("`prompt`");
  });

  test("says when a list index is out of range", () => {
    expect(failure(() => resolveValue("${{ item.tags[5] }}", context())).message).toContain(
      "has no item 5 (it has 2)",
    );
  });

  test("never reads the API token, even when the environment holds it", () => {
    for (const name of ["RUNCOMFY_API_TOKEN", "YOUR_API_TOKEN"]) {
      const error = failure(() => resolveValue(`Bearer \${{ env.${name} }}`, context()));
      expect(error.message).toContain("never readable");
      expect(error.message).not.toContain("secret-token");
    }
  });

  test("reaches no prototype: constructor, __proto__ and toString are missing fields", () => {
    for (const text of [
      "${{ item.constructor }}",
      "${{ item.constructor.constructor }}",
      "${{ item.__proto__ }}",
      "${{ vars.toString }}",
      "${{ item.prompt.length }}",
      "${{ item.tags.length }}",
      "${{ constructor.constructor }}",
    ]) {
      expect(() => resolveValue(text, context()), text).toThrow(TemplateResolutionError);
    }
  });

  test("reads a data field named __proto__ as data", () => {
    const item = JSON.parse('{"__proto__": "plain"}') as Record<string, unknown>;
    expect(resolveValue("${{ item.__proto__ }}", context({ item }))).toBe("plain");
  });

  test("refuses an unknown root", () => {
    expect(failure(() => resolveValue("${{ process.env }}", context())).message).toContain(
      "unknown root `process`",
    );
  });

  test("reads a step's result once it is in the context, and fails before", () => {
    const steps = { animate: { output: { video: "https://cdn/v.mp4" }, request_id: "r-1" } };
    expect(resolveValue("${{ steps.animate.output.video }}", context({ steps }))).toBe("https://cdn/v.mp4");
    expect(failure(() => resolveValue("${{ steps.animate.output.video }}", context())).message).toContain(
      "has no result yet",
    );
  });
});

describe("resolveKnown", () => {
  test("leaves references to steps without a result as their template text", () => {
    const input = { prompt: "${{ vars.style }}", video_url: "${{ steps.animate.output.video }}" };
    expect(resolveKnown(input, context())).toEqual({
      value: { prompt: "noir", video_url: "${{ steps.animate.output.video }}" },
      pending: true,
    });
    expect(resolveKnown({ prompt: "${{ vars.style }}" }, context()).pending).toBe(false);
  });

  test("still fails on a missing value that is not a step result", () => {
    expect(() => resolveKnown("${{ item.nope }} ${{ steps.a.stdout }}", context())).toThrow(
      TemplateResolutionError,
    );
  });

  test("escapes data put in around a pending reference, so resolving again cannot run it", () => {
    const item = { prompt: "say ${{ env.HOME }}" };
    const partial = resolveKnown("${{ item.prompt }} / ${{ steps.a.stdout }}", context({ item }));
    expect(partial.pending).toBe(true);
    const final = resolveValue(partial.value, context({ item, env: {}, steps: { a: { stdout: "out" } } }));
    expect(final).toBe("say ${{ env.HOME }} / out");
  });
});

describe("dependencies", () => {
  test("referencedSteps lists every step a value reads, deep", () => {
    const value = {
      a: "${{ steps.one.output.video }}",
      b: ["x ${{ steps.two.files.video }} ${{ item.id }}"],
    };
    expect([...referencedSteps(value)].sort()).toEqual(["one", "two"]);
  });

  test("deferredFields names the top-level fields that read a step without a result", () => {
    const input = {
      prompt: "${{ item.prompt }}",
      video_url: "${{ steps.animate.output.video }}",
      ratio: "1280:720",
    };
    expect(deferredFields(input)).toEqual(["video_url"]);
    expect(deferredFields(input, { animate: {} })).toEqual([]);
  });
});
