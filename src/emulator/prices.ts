/**
 * What the emulator charges (SPEC §9): a price per model, served by `GET /v1/models/{id}`,
 * and the cost of each request, fixed when it is created and reported by
 * `/result?include_cost=true` once it ends. Configurable per model (`prices`), with default
 * prices by kind so a demo needs no setup, and a `costFactor` that charges more (or less)
 * than the price says, to test what a client does when its estimate was wrong.
 */
import { outputKindOf } from "./api.js";
import type { EmulatorConfig, ModelPrice } from "./config.js";

/** Default prices: a video model per second of output, an image model per output. */
export const DEFAULT_VIDEO_PRICE: Readonly<ModelPrice> = Object.freeze({ usd: 0.1, unit: "second" });
export const DEFAULT_IMAGE_PRICE: Readonly<ModelPrice> = Object.freeze({ usd: 0.04, unit: "output" });

/** The model's price, or undefined when it has none (its price call answers 404). */
export function priceOf(config: Readonly<EmulatorConfig>, modelId: string): ModelPrice | undefined {
  if (Object.hasOwn(config.prices, modelId)) return config.prices[modelId] ?? undefined;
  if (!config.defaultPrices) return undefined;
  return outputKindOf(modelId) === "image" ? DEFAULT_IMAGE_PRICE : DEFAULT_VIDEO_PRICE;
}

/** The `GET /v1/models/{id}` fields of a price (API.md "Prices and cost"). */
export function priceFields(
  modelId: string,
  price: ModelPrice,
  outputSeconds: number,
): Record<string, unknown> {
  const note =
    price.unit === "second"
      ? `per second of output; the emulator bills ${price.seconds ?? outputSeconds} s per request`
      : "per output";
  return { model_id: modelId, base_price_usd: price.usd, price_unit: price.unit, pricing_note: note };
}

/**
 * What a request of the model costs in USD: price × one output, or × its seconds of output,
 * × `costFactor`; undefined for a model without a price. Rounded to the micro-dollar, as
 * runflow keeps money.
 */
export function requestCost(config: Readonly<EmulatorConfig>, modelId: string): number | undefined {
  const price = priceOf(config, modelId);
  if (price === undefined) return undefined;
  const units = price.unit === "second" ? (price.seconds ?? config.outputSeconds) : 1;
  return Math.round(price.usd * units * config.costFactor * 1_000_000) / 1_000_000;
}
