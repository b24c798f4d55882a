/**
 * Reading the prices a run needs (SPEC §9 "Prices"): each model's price is asked of the API
 * the run is made at (`GET /v1/models/{id}`) and recorded with when it was read, per API
 * origin like every result. When the API cannot be asked (no answer), the price recorded
 * last at that origin is used, and said so.
 */
import type { ModelPriceAnswer } from "../api/answers.js";
import type { HistoryPort } from "../store/port.js";
import type { PriceRecord } from "../store/types.js";
import { requestEstimate, type CostAssumption, type RequestEstimate } from "../cost/estimate.js";

/** Asks the API for a model's price: undefined when it gives none; throws when it cannot be asked. */
export type PriceSource = (modelId: string) => Promise<ModelPriceAnswer | undefined>;

export interface ReadPrices {
  /** By model id; absent when no price is known. */
  prices: Map<string, PriceRecord>;
  /** What was said about reading them (a price taken from the record instead of the API). */
  notes: string[];
}

/**
 * The prices of `models`: from `source` when given (recorded in `store` when it is writable),
 * else, or when the API does not answer, as recorded at `apiOrigin` before.
 */
export async function readPrices(
  models: readonly string[],
  options: {
    apiOrigin: string;
    source?: PriceSource | undefined;
    /** Where prices are recorded and, failing the API, read from. */
    store?: Pick<HistoryPort, "pricesAt"> & Partial<Pick<HistoryPort, "recordPrice">>;
    now: number;
  },
): Promise<ReadPrices> {
  const recorded = (await options.store?.pricesAt(options.apiOrigin)) ?? new Map<string, PriceRecord>();
  const prices = new Map<string, PriceRecord>();
  const notes: string[] = [];
  await Promise.all(
    models.map(async (model) => {
      if (!options.source) {
        const known = recorded.get(model);
        if (known) prices.set(model, known);
        return;
      }
      try {
        const answer = await options.source(model);
        if (answer === undefined) return;
        const price: PriceRecord = {
          apiOrigin: options.apiOrigin,
          modelId: model,
          micros: answer.micros,
          unit: answer.unit,
          note: answer.note,
          readAt: options.now,
        };
        prices.set(model, price);
        await options.store?.recordPrice?.(price);
      } catch (error) {
        const known = recorded.get(model);
        const why = error instanceof Error ? error.message : String(error);
        if (known) {
          prices.set(model, known);
          notes.push(
            `${model}: price not read (${why}); using the one read ${new Date(known.readAt).toISOString()}`,
          );
        } else notes.push(`${model}: price not read (${why})`);
      }
    }),
  );
  return { prices, notes };
}

/** Each model's estimate per request from its price, what its earlier requests cost, and the workflow's assumptions. */
export function requestEstimates(
  models: readonly string[],
  prices: ReadonlyMap<string, PriceRecord>,
  learned: (model: string) => { micros: number; requests: number } | undefined,
  assume: Readonly<Record<string, CostAssumption>>,
  /** Why a model has no price (default: the API gives none). */
  noPrice?: string,
): Map<string, RequestEstimate> {
  const estimates = new Map<string, RequestEstimate>();
  for (const model of models) {
    estimates.set(model, requestEstimate(model, prices.get(model), learned(model), assume[model], noPrice));
  }
  return estimates;
}
