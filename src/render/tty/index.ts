export {
  createTtyRenderer,
  type EventSource,
  type TerminalStream,
  type TtyRenderer,
  type TtyRendererOptions,
} from "./tty-renderer.js";
export { renderFrame, type FrameOptions, type FrameSize } from "./frame.js";
export {
  ProgressModel,
  FAILURE_LINGER_MS,
  NOTICE_LINGER_MS,
  THROUGHPUT_WINDOW_MS,
  type JobView,
  type StepView,
} from "./progress-model.js";
export { colorEnabled } from "./text.js";
