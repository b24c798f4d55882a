/**
 * Terminal text for the live view: user data made safe to print, lines cut to the width,
 * colour applied last so cutting never splits an escape sequence.
 */

export type Style = "bold" | "dim" | "red" | "green" | "yellow" | "blue" | "cyan" | "magenta";

const SGR: Record<Style, [open: string, close: string]> = {
  bold: ["\u001b[1m", "\u001b[22m"],
  dim: ["\u001b[2m", "\u001b[22m"],
  red: ["\u001b[31m", "\u001b[39m"],
  green: ["\u001b[32m", "\u001b[39m"],
  yellow: ["\u001b[33m", "\u001b[39m"],
  blue: ["\u001b[34m", "\u001b[39m"],
  cyan: ["\u001b[36m", "\u001b[39m"],
  magenta: ["\u001b[35m", "\u001b[39m"],
};

/** A piece of a line with at most one style. */
export interface Segment {
  text: string;
  style?: Style | undefined;
}

/**
 * Control characters (escape sequences, newlines, bidi overrides) in a job key or an error
 * message could move the cursor or rewrite the screen: each becomes a space.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, " ");
}

export function firstLine(text: string): string {
  return (text.split(/\r?\n/, 1)[0] ?? "").trim();
}

/** Cuts the segments to `width` characters, ending with `…` when something was cut. */
export function fitSegments(segments: readonly Segment[], width: number): Segment[] {
  const fitted: Segment[] = [];
  let room = Math.max(0, width);
  const total = segments.reduce((sum, segment) => sum + [...segment.text].length, 0);
  if (total <= room) return [...segments];
  // One character is kept for the ellipsis.
  room -= 1;
  for (const segment of segments) {
    if (room <= 0) break;
    const chars = [...segment.text];
    if (chars.length <= room) {
      fitted.push(segment);
      room -= chars.length;
    } else {
      fitted.push({ text: chars.slice(0, room).join(""), style: segment.style });
      room = 0;
    }
  }
  if (width > 0) fitted.push({ text: "…", style: "dim" });
  return fitted;
}

export function paint(segments: readonly Segment[], color: boolean): string {
  return segments
    .map(({ text, style }) => {
      if (!color || style === undefined || text === "") return text;
      const [open, close] = SGR[style];
      return `${open}${text}${close}`;
    })
    .join("");
}

/**
 * Whether to colour, by the conventions of no-color.org and FORCE_COLOR: FORCE_COLOR wins
 * (`0` or `false` turns colour off), then any non-empty NO_COLOR turns it off, else colour
 * when the stream is a terminal.
 */
export function colorEnabled(env: NodeJS.ProcessEnv, stream: { isTTY?: boolean | undefined }): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== "0" && force.toLowerCase() !== "false";
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  return stream.isTTY === true;
}
