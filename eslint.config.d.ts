/** Types of eslint.config.js, for test/lint-layers.test.ts which imports its layer rules. */
import type { Linter } from "eslint";

/** The `no-restricted-imports` entries that keep src/'s layers one way. */
export function layerRules(): Linter.Config[];

declare const config: Linter.Config[];
export default config;
