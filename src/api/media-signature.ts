/**
 * Does a downloaded file look like the media its name claims? A file host that answers 200
 * with an error page, a login page or a JSON message must not leave `animate.mp4` holding
 * HTML as a succeeded output. Judged from the answer's Content-Type and the file's first
 * bytes (its magic number), by family: a `.mp4` that is really a WebM is still a video, so
 * an extension guessed from a URL never fails a good file.
 */

type Family = "video" | "image" | "audio";

/** How many leading bytes the signatures below need. */
export const SIGNATURE_BYTES = 12;

const FAMILY_OF_EXTENSION: Record<string, Family> = {
  ".mp4": "video",
  ".m4v": "video",
  ".mov": "video",
  ".3gp": "video",
  ".webm": "video",
  ".mkv": "video",
  ".png": "image",
  ".jpg": "image",
  ".jpeg": "image",
  ".webp": "image",
  ".gif": "image",
  ".mp3": "audio",
  ".wav": "audio",
  ".m4a": "audio",
};

const ascii = (bytes: Uint8Array, start: number, end: number): string =>
  Buffer.from(bytes.subarray(start, end)).toString("latin1");

/** ISO base media (MP4, MOV, 3GP, M4A): a box type at offset 4. */
const ISO_BOXES = new Set(["ftyp", "moov", "mdat", "free", "skip", "wide", "pnot"]);

const SIGNATURES: Record<string, (head: Uint8Array) => boolean> = {
  "ISO media (mp4/mov)": (head) => ISO_BOXES.has(ascii(head, 4, 8)),
  "Matroska/WebM": (head) => ascii(head, 0, 4) === "\x1a\x45\xdf\xa3",
  PNG: (head) => ascii(head, 0, 8) === "\x89PNG\r\n\x1a\n",
  JPEG: (head) => head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff,
  GIF: (head) => ascii(head, 0, 6) === "GIF87a" || ascii(head, 0, 6) === "GIF89a",
  WebP: (head) => ascii(head, 0, 4) === "RIFF" && ascii(head, 8, 12) === "WEBP",
  WAV: (head) => ascii(head, 0, 4) === "RIFF" && ascii(head, 8, 12) === "WAVE",
  MP3: (head) => ascii(head, 0, 3) === "ID3" || (head[0] === 0xff && ((head[1] ?? 0) & 0xe0) === 0xe0),
};

const SIGNATURES_OF_FAMILY: Record<Family, string[]> = {
  video: ["ISO media (mp4/mov)", "Matroska/WebM"],
  image: ["PNG", "JPEG", "GIF", "WebP"],
  audio: ["MP3", "WAV", "ISO media (mp4/mov)"],
};

/** Content types no media file is served as: what error and login pages are. */
const NOT_MEDIA_TYPES = /^(text\/|application\/(json|xml|xhtml\+xml|problem\+json)\b)/i;

/**
 * Why a file saved with `extension` (`.mp4`), answered with `contentType` and starting with
 * `head` (at least its first SIGNATURE_BYTES bytes, or all of a shorter file), is not the
 * media it claims to be; undefined when it looks right or when the extension names no
 * media runflow knows (such files are kept as they come).
 */
export function mediaMismatch(
  extension: string,
  head: Uint8Array,
  bytes: number,
  contentType: string | undefined,
): string | undefined {
  const family = FAMILY_OF_EXTENSION[extension.toLowerCase()];
  if (family === undefined) return undefined;
  if (bytes === 0) return `the file host sent an empty file where ${article(family)} ${family} was expected`;
  if (contentType !== undefined && NOT_MEDIA_TYPES.test(contentType.trim())) {
    return `the file host answered ${contentType.split(";")[0]!.trim()} (${bytes} bytes), not ${article(family)} ${family}`;
  }
  const names = SIGNATURES_OF_FAMILY[family];
  if (names.some((name) => SIGNATURES[name]!(head))) return undefined;
  return `the file does not look like ${article(family)} ${family} (${bytes} bytes, starting ${JSON.stringify(ascii(head, 0, Math.min(head.length, 8)))}; expected ${names.join(" or ")})`;
}

function article(family: Family): string {
  return family === "image" || family === "audio" ? "an" : "a";
}
