/**
 * runflow's local RunComfy-compatible API emulator (SPEC §7, API.md "The emulator"): what the
 * test suite, the benchmarks and `runflow apply --emulator` run against. docs/emulator.md
 * describes the markers, faults and control endpoints.
 */
export {
  startEmulator,
  DEFAULT_HOST,
  PortInUseError,
  type EmulatorOptions,
  type RunningEmulator,
} from "./server.js";
export {
  applyConfigPatch,
  DEFAULT_CONFIG,
  ENDPOINTS,
  FAULT_KINDS,
  type DurationSetting,
  type EmulatorConfig,
  type EmulatorConfigPatch,
  type Endpoint,
  type EndpointSelector,
  type Fault,
  type FaultKind,
} from "./config.js";
export type { EmulatorState } from "./core.js";
export type { EmulatorLogEntry, LogCounters } from "./request-log.js";
export { bodySha256, type SubmissionGroup, type SubmissionStats } from "./submissions.js";
export { DEFAULT_FAILURE_MESSAGE } from "./markers.js";
