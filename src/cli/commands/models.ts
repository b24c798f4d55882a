/**
 * `runflow models`: list the models runflow knows a schema for, show one, and pull entries
 * from the API's catalog into the project's `schemas/models/` (SPEC §8).
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { createClientFromEnv } from "../../api/index.js";
import { readApiToken } from "../../api/env.js";
import { formatPrice, usdOf } from "../../cost/money.js";
import { readPrices, type ReadPrices } from "../../engine/prices.js";
import { apiOriginFor } from "../../app/api-target.js";
import { openStateStore } from "../../app/open-store.js";
import { isPostgresLocation, resolveStateLocation } from "../../store/location.js";
import type { PriceRecord } from "../../store/types.js";
import { UsageError } from "../../errors.js";
import {
  catalogShapeOf,
  loadModelRegistry,
  modelFileName,
  ModelSchemaError,
  parseModelEntry,
  requireModel,
  type MediaValidation,
  type ModelEntry,
  type ModelInputProperty,
  type ModelRegistry,
} from "../../models/index.js";
import { commandOutput, globalOptions } from "../context.js";

function registryFor(command: Command): ModelRegistry {
  return loadModelRegistry({ dirs: globalOptions(command).models });
}

function ruleText(rule: MediaValidation): string {
  const value = rule.validation_value;
  switch (rule.validation_rule) {
    case "file_size_mb<":
      return `< ${value} MB`;
    case "width_pixels>":
      return `width > ${value} px`;
    case "height_pixels>":
      return `height > ${value} px`;
    case "width/height>":
      return `width/height > ${value}`;
    case "width/height<":
      return `width/height < ${value}`;
  }
}

/** `string, required, at most 1000 characters, …`: what a user must know to write the value. */
function constraintsOf(property: ModelInputProperty, required: boolean): string[] {
  const parts = [property.type ?? "any", ...(required ? ["required"] : [])];
  if (property.default !== undefined) parts.push(`default ${JSON.stringify(property.default)}`);
  if (property.maxLength !== undefined) parts.push(`at most ${property.maxLength} characters`);
  if (property.enum) parts.push(`one of ${property.enum.map((option) => JSON.stringify(option)).join(", ")}`);
  if (property.validations?.length) parts.push(`media: ${property.validations.map(ruleText).join(", ")}`);
  return parts;
}

/** One line: `prompt* (≤1000), video_url* (< 16 MB), ratio=1280:720 (8 choices), image_url (< 16 MB)`. */
export function summarizeInputs(entry: ModelEntry): string {
  const required = new Set(entry.input_schema.required ?? []);
  return Object.entries(entry.input_schema.properties)
    .map(([name, property]) => {
      const notes: string[] = [];
      if (property.maxLength !== undefined) notes.push(`≤${property.maxLength}`);
      if (property.enum) notes.push(`${property.enum.length} choices`);
      if (property.validations?.length) notes.push(...new Set(property.validations.map(ruleText)));
      const mark = required.has(name) ? "*" : "";
      const value = property.default;
      const fallback =
        value === undefined ? "" : `=${typeof value === "string" ? value : JSON.stringify(value)}`;
      return `${name}${mark}${fallback}${notes.length ? ` (${notes.join(", ")})` : ""}`;
    })
    .join(", ");
}

function inputsAsJson(entry: ModelEntry): object[] {
  const required = new Set(entry.input_schema.required ?? []);
  return Object.entries(entry.input_schema.properties).map(([name, property]) => ({
    name,
    required: required.has(name),
    ...property,
  }));
}

/**
 * The models' prices (SPEC §9): read now from the API when a token is set, else the ones
 * `apply` recorded from that API in the state database, with when they were read.
 */
async function pricesOf(
  command: Command,
  models: readonly string[],
): Promise<ReadPrices & { live: boolean }> {
  const env = process.env;
  const apiOrigin = apiOriginFor({ env });
  const token = readApiToken(env);
  const statePath = resolveStateLocation(process.cwd(), globalOptions(command).state);
  const store =
    isPostgresLocation(statePath) || existsSync(statePath)
      ? await openStateStore(statePath, { readonly: true, neverWrite: true })
      : undefined;
  try {
    const client = token === undefined ? undefined : createClientFromEnv({ retry: { attempts: 2 } });
    const read = await readPrices(models, {
      apiOrigin,
      source: client && ((model) => client.price(model, { signal: AbortSignal.timeout(10_000) })),
      store: store && { pricesAt: (origin: string) => store.history.pricesAt(origin) },
      now: Date.now(),
    });
    return { ...read, live: client !== undefined };
  } finally {
    await store?.close();
  }
}

/** `$0.10/second (read 2026-12-04T21:48:02Z)`, or `unknown`. */
function priceText(price: PriceRecord | undefined): string {
  if (!price) return "price unknown";
  return `${formatPrice(price.micros, price.unit)} (read ${new Date(price.readAt).toISOString().replace(/\.\d{3}Z$/, "Z")})`;
}

function priceJson(price: PriceRecord | undefined): object | null {
  if (!price) return null;
  return {
    usd: usdOf(price.micros),
    unit: price.unit,
    note: price.note ?? null,
    read_at: new Date(price.readAt).toISOString(),
  };
}

async function listModels(command: Command): Promise<void> {
  const output = commandOutput(command);
  const entries = registryFor(command).list();
  const { prices, notes, live } = await pricesOf(
    command,
    entries.map((entry) => entry.model_id),
  );
  if (globalOptions(command).json) {
    const models = entries.map((entry) => ({
      model_id: entry.model_id,
      source: entry.source,
      price: priceJson(prices.get(entry.model_id)),
      inputs: inputsAsJson(entry),
    }));
    output.stdout(`${JSON.stringify({ models }, null, 2)}\n`);
    return;
  }
  if (entries.length === 0) {
    output.stdout("no model schemas found; add one to schemas/models/ or run `runflow models pull`\n");
    return;
  }
  const width = Math.max(...entries.map((entry) => entry.model_id.length));
  for (const entry of entries) {
    output.stdout(`${entry.model_id.padEnd(width)}  ${summarizeInputs(entry)}\n`);
    // Under its model, when one is known: a list without prices reads as before.
    const price = prices.get(entry.model_id);
    if (price) output.stdout(`${"".padEnd(width)}  ${priceText(price)}\n`);
  }
  for (const note of notes) output.stderr(`note: ${note}\n`);
  const whence = live
    ? "prices read from the API now"
    : prices.size > 0
      ? "prices as last recorded by apply"
      : "prices unknown until read: set RUNCOMFY_API_TOKEN";
  output.stdout(`(* required; ${whence}; \`runflow models show ID\` for details)\n`);
}

function outputNamesOf(entry: ModelEntry): string[] {
  const output = (entry.output_schema as { output?: { properties?: Record<string, unknown> } } | undefined)
    ?.output;
  return Object.keys(output?.properties ?? {});
}

async function showModel(modelId: string, command: Command): Promise<void> {
  const output = commandOutput(command);
  const entry = requireModel(registryFor(command), modelId);
  const { prices, notes } = await pricesOf(command, [entry.model_id]);
  const price = prices.get(entry.model_id);
  if (globalOptions(command).json) {
    const shown = { ...catalogShapeOf(entry), source: entry.source, price: priceJson(price) };
    output.stdout(`${JSON.stringify(shown, null, 2)}\n`);
    return;
  }
  for (const note of notes) output.stderr(`note: ${note}\n`);
  const required = new Set(entry.input_schema.required ?? []);
  const properties = Object.entries(entry.input_schema.properties);
  const width = Math.max(...properties.map(([name]) => name.length));
  const lines = [
    entry.model_id,
    `  from ${entry.source ?? "(unknown)"}`,
    `  price: ${priceText(price)}${price?.note ? ` — ${price.note}` : ""}`,
    "",
    "inputs:",
  ];
  for (const [name, property] of properties) {
    lines.push(`  ${name.padEnd(width)}  ${constraintsOf(property, required.has(name)).join(", ")}`);
    const about = [property.title, property.description].filter((text) => text).join(": ");
    if (about) lines.push(`  ${"".padEnd(width)}  ${about}`);
  }
  const outputs = outputNamesOf(entry);
  if (outputs.length > 0) lines.push("", `outputs: ${outputs.join(", ")}`);
  output.stdout(`${lines.join("\n")}\n`);
}

/** Writes via a temporary file and a rename, so a crash never leaves half a schema behind. */
function writeEntryFile(file: string, entry: ModelEntry): void {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(catalogShapeOf(entry), null, 2)}\n`);
  renameSync(temporary, file);
}

interface PullOptions {
  search?: string;
  dir?: string;
}

async function pullModels(options: PullOptions, command: Command): Promise<void> {
  const output = commandOutput(command);
  const dir = path.resolve(options.dir ?? path.join("schemas", "models"));
  const client = createClientFromEnv();
  const catalog = await client.listModels(options.search === undefined ? {} : { search: options.search });
  if (catalog.length === 0) {
    const what = options.search === undefined ? "any model" : `a model matching "${options.search}"`;
    throw new UsageError(`the API's catalog has no entry for ${what}`, {
      hint: "try a shorter --search text, or none to pull the whole catalog",
    });
  }

  const written: { model_id: string; file: string }[] = [];
  const skipped: { model_id: string; reason: string }[] = [];
  const claimedBy = new Map<string, string>();
  mkdirSync(dir, { recursive: true });
  for (const item of catalog) {
    const label = typeof item.model_id === "string" ? item.model_id : "(no model_id)";
    let entry: ModelEntry;
    try {
      entry = parseModelEntry(item, `catalog entry "${label}"`);
    } catch (error) {
      if (!(error instanceof ModelSchemaError)) throw error;
      skipped.push({ model_id: label, reason: error.message });
      continue;
    }
    const file = path.join(dir, modelFileName(entry.model_id));
    const earlier = claimedBy.get(file);
    if (earlier !== undefined) {
      skipped.push({ model_id: entry.model_id, reason: `its file name ${file} is taken by "${earlier}"` });
      continue;
    }
    claimedBy.set(file, entry.model_id);
    writeEntryFile(file, entry);
    written.push({ model_id: entry.model_id, file });
  }

  if (globalOptions(command).json) {
    output.stdout(`${JSON.stringify({ dir, written, skipped }, null, 2)}\n`);
  } else {
    for (const { model_id, file } of written)
      output.stdout(`wrote ${path.relative(process.cwd(), file)}  (${model_id})\n`);
    for (const { model_id, reason } of skipped) output.stderr(`skipped ${model_id}: ${reason}\n`);
    output.stdout(`pulled ${written.length} model schema${written.length === 1 ? "" : "s"} into ${dir}\n`);
  }
}

/** Its arguments, options and action, on the command commands/index.ts declares (name, description). */
export function define(models: Command): void {
  models.action(async function (this: Command) {
    await listModels(this);
  });

  models
    .command("show")
    .description("print one model's price, inputs, their constraints and its outputs")
    .argument("<id>", 'the model id, e.g. "runwayml/runway-aleph/video-to-video"')
    .action(async function (this: Command, modelId: string) {
      await showModel(modelId, this);
    });

  models
    .command("pull")
    .description("fetch model schemas from the API's catalog into schemas/models/")
    .option("--search <text>", "only the models whose catalog entry matches TEXT")
    .option("--dir <dir>", "where to write the files (default: schemas/models/ of the current folder)")
    .action(async function (this: Command, options: PullOptions) {
      await pullModels(options, this);
    });
}
