#!/usr/bin/env node
// The CLI's entry, dist/bin/runflow.js (scripts/bundle-cli.js copies this file there and
// fills in BUILD_ID, COMMANDS, SHORT_LIVED and V8_FLAGS). It sets V8's flags (heap,
// WebAssembly) for the commands that run a batch, keeps a code cache of the bundle's files,
// then loads the bundle's main module (src/cli/main.ts).
//
// The code cache (docs/decisions.md, "Start-up"): Node 20 compiles every file it loads from
// its source at each start; V8 can instead take the code it compiled before (`cachedData`
// of vm.Script, as the v8-compile-cache package does). For each file of the bundle (and the
// precompiled validators), the code a command's run compiled is written once, at the end of
// that run (or, for a file loaded before its first submission, when that leaves: below),
// under RUNFLOW_COMPILE_CACHE (default: the user's cache folder,
// ~/.cache/runflow/compile), and read by later runs of the same command. It is only ever a
// shortcut: a cache that is missing, unreadable, damaged (its CRC-32 is checked before V8
// sees it: V8 itself checks no checksum; zlib's CRC-32 rather than a sha-256, because
// node:crypto alone costs a start ≈ 3 ms, node:zlib ≈ 0.5) or refused by V8 (another Node, other flags) is ignored and written again; a
// folder that cannot be written (a read-only home, a CI sandbox) means no cache, silently.
// Its folder is named after this build (BUILD_ID, the hash of the bundle's files and of
// this entry): V8
// checks a cache against its source only by length, so a cache of another build must never
// be offered. RUNFLOW_COMPILE_CACHE=off turns it off. With --verbose it is not used: the
// files load as usual, with source maps on, so a stack trace names the TypeScript sources.
// A command that submits also keeps there the files it loaded before its first submission
// in one (its pack, below): a later run reads it and its cache instead of each file's, and
// first loads the Node modules the pack names, before the V8 flags (setV8Flags).
"use strict";

const BUILD_ID = "__RUNFLOW_BUILD_ID__";
/** The command names, so a cache is kept per command (each compiles other code). */
const COMMANDS = new Set(["__RUNFLOW_COMMANDS__"]);
/** The commands that read, print and exit, and a batch's V8 flags (src/cli/v8-flags.ts). */
const SHORT_LIVED = new Set(["__RUNFLOW_SHORT_LIVED__"]);
const V8_FLAGS = ["__RUNFLOW_V8_FLAGS__"];

function cacheBase(env) {
  const chosen = env.RUNFLOW_COMPILE_CACHE;
  if (chosen !== undefined && chosen !== "") {
    return ["off", "0", "false", "no"].includes(chosen.toLowerCase()) ? undefined : chosen;
  }
  const path = require("node:path");
  if (env.XDG_CACHE_HOME) return path.join(env.XDG_CACHE_HOME, "runflow", "compile");
  if (process.platform === "win32" && env.LOCALAPPDATA) {
    return path.join(env.LOCALAPPDATA, "runflow", "compile");
  }
  return env.HOME ? path.join(env.HOME, ".cache", "runflow", "compile") : undefined;
}

/** The first word that names a command (`runflow --json status` → status). */
function commandOf(argv) {
  return argv.find((word) => COMMANDS.has(word)) ?? "none";
}

/** Whether the command runs a batch: it takes the batch's V8 flags (src/cli/v8-flags.ts). */
const runsBatch = (command) => command !== "none" && !SHORT_LIVED.has(command);

/**
 * A batch's V8 flags, for the commands that run one (src/cli/v8-flags.ts, whose rule
 * src/cli/main.ts applies again: the same flags, so nothing changes then). Set before
 * anything of the bundle is compiled: V8 refuses a code cache made under other flags. A
 * short-lived command does not even load node:v8.
 *
 * Node's own modules come with a code cache too (in its binary), made under V8's default
 * flags: once a flag is set, each of them loaded afterwards is compiled from its source,
 * about three times as long (node:crypto, http, assert, fs/promises, zlib: ≈ 5 ms with
 * their cache, 15–20 without, before apply's first request). So the command's pack names
 * the ones its last run had loaded by its first submission (useCompileCache), and they are
 * loaded before the flags are set: `builtins`.
 */
function setV8Flags(command, builtins = []) {
  if (!runsBatch(command)) return;
  for (const name of builtins) {
    try {
      require(`node:${name}`);
    } catch {
      // Another Node may lack one: it loads (or fails) where the program needs it, as before.
    }
  }
  const v8 = require("node:v8");
  for (const flag of V8_FLAGS) v8.setFlagsFromString(flag);
}

const HEADER = 4; // a cache file's first bytes: its payload's CRC-32, big-endian

/**
 * Whether the command runs on a PostgreSQL state (`--state`, else RUNFLOW_STATE): a cluster's
 * apply loads other code before its first work (pg, BullMQ) and never its own requests' if it
 * only follows, so its pack is kept apart from one machine's (a pack learned by one would
 * slow the other's start: ≈ 35 ms measured for a one-step apply on a cluster apply's pack).
 */
function onPostgresState(argv, env) {
  const at = argv.findIndex((word) => word === "--state" || word.startsWith("--state="));
  const state =
    at < 0 ? env.RUNFLOW_STATE : argv[at].startsWith("--state=") ? argv[at].slice(8) : argv[at + 1];
  return /^postgres(ql)?:\/\//i.test(state ?? "");
}

/** The command's folder of the code cache (under `base`), for this build of runflow and Node. */
function cacheFolder(base, command) {
  const name = onPostgresState(process.argv.slice(2), process.env) ? `${command}-cluster` : command;
  return require("node:path").join(base, `${BUILD_ID}-${process.version}-${process.arch}`, name);
}

/** A cache file's payload; undefined when it is missing, unreadable or damaged. */
function readCache(file) {
  let data;
  try {
    data = require("node:fs").readFileSync(file);
  } catch {
    return undefined;
  }
  if (data.length <= HEADER) return undefined;
  const payload = data.subarray(HEADER);
  return require("node:zlib").crc32(payload) === data.readUInt32BE(0) ? payload : undefined;
}

/**
 * The command's pack (useCompileCache), read before the heap flags are set: its source and
 * its first line, which names its files and the Node modules loaded before the first
 * submission. Undefined when the command has none, or a damaged one.
 */
function readPack(folder, command) {
  if (!runsBatch(command)) return undefined;
  const source = readCache(require("node:path").join(folder, "pack.src"))?.toString("latin1");
  if (source === undefined) return undefined;
  try {
    const { files, builtins } = JSON.parse(source.slice(2, source.indexOf("\n")));
    if (!Array.isArray(files) || !Array.isArray(builtins)) return undefined;
    return { source, files, builtins: builtins.filter((name) => typeof name === "string") };
  } catch {
    return undefined;
  }
}

function useCompileCache(folder, command, pack) {
  const fs = require("node:fs");
  const path = require("node:path");
  const vm = require("node:vm");
  const { crc32 } = require("node:zlib");
  const Module = require("node:module");

  const ours = new Set([__dirname, path.join(__dirname, "..", "validators")]);
  /** Files compiled without a usable cache: their code is written at exit. */
  const toWrite = [];
  const KEPT_BUILDS = 4;
  const base = path.dirname(path.dirname(folder));

  /** Calls a file's wrapper as Node's loader would: with the module's own `require`. */
  function callWrapper(module, wrapper, filename) {
    const moduleRequire = (id) => module.require(id);
    moduleRequire.resolve = (request, options) => Module._resolveFilename(request, module, false, options);
    moduleRequire.main = require.main;
    moduleRequire.cache = Module._cache;
    moduleRequire.extensions = Module._extensions;
    return wrapper.call(
      module.exports,
      module.exports,
      moduleRequire,
      module,
      filename,
      path.dirname(filename),
    );
  }

  /** A shebang line is not JavaScript inside a wrapper: kept as a comment, same length. */
  const withoutShebang = (content) => (content.startsWith("#!") ? `//${content.slice(2)}` : content);

  /** `source` compiled, from `cachedData` when V8 takes it (`cachedDataRejected` says whether it did). */
  function scriptOf(source, filename, cachedData) {
    return new vm.Script(source, {
      filename,
      cachedData,
      importModuleDynamically: vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER,
    });
  }

  /** The compiled script of `source`, from its cache when there is a usable one (else written later). */
  function compiled(source, filename, cacheFile) {
    const cachedData = readCache(cacheFile);
    const script = scriptOf(source, filename, cachedData);
    if (cachedData === undefined || script.cachedDataRejected) toWrite.push({ script, cacheFile });
    return script;
  }

  const compile = Module.prototype._compile;
  Module.prototype._compile = function compileWithCache(content, filename) {
    if (!ours.has(path.dirname(filename))) return compile.call(this, content, filename);
    const cacheFile = path.join(folder, `${path.basename(filename)}.v8`);
    const script = compiled(Module.wrap(withoutShebang(content)), filename, cacheFile);
    return callWrapper(this, script.runInThisContext({ displayErrors: true }), filename);
  };

  // The pack: the bundle's files (and precompiled validators) a submitting command loaded
  // before its first submission, in one file of the cache folder, written (once) by the first run that submits, with
  // its code cache (written by the next run, like any file's). A later run reads two files
  // instead of two for each of ≈ 50 (the source and its cache), and compiles one script: a
  // module still runs only when it is required, as before. The files it does not hold load
  // one by one as above. A pack that is missing or damaged is learned again. A command that
  // reads, prints and exits never submits: it neither looks for a pack nor learns one.
  // The pack's first line also names the Node modules loaded by then (setV8Flags).
  //
  // The pack's code cache holds what its run had compiled when it was written, and a cache
  // V8 accepts is never written again: it must come from a run that got to its first
  // submission. One that did not (an invalid workflow, every step reused, --dry-run) writes
  // its code at exit as `pack.partial.v8`, used until a run that submits writes `pack.v8`
  // (one learned from a run stopped by an invalid file made every later apply's first
  // submission ≈ 18 ms later: the code it lacked was compiled as it ran).
  const submits = runsBatch(command);
  const packFile = path.join(folder, "pack.src");
  const packCodeFile = path.join(folder, "pack.v8");
  const partialPackCodeFile = path.join(folder, "pack.partial.v8");
  /** The pack's script, and whether V8 took a cache of it: `pack.v8` (whole), the partial one, or none. */
  let packCode;
  let packed;
  if (pack !== undefined) {
    try {
      const wholeCode = readCache(packCodeFile);
      const cachedData = wholeCode ?? readCache(partialPackCodeFile);
      const script = scriptOf(pack.source, path.join(__dirname, "pack.js"), cachedData);
      const taken = cachedData !== undefined && !script.cachedDataRejected;
      packCode = { script, cache: !taken ? "none" : wholeCode !== undefined ? "whole" : "partial" };
      const wrappers = script.runInThisContext({ displayErrors: true });
      const whole =
        wrappers.length === pack.files.length && wrappers.every((wrapper) => typeof wrapper === "function");
      packed = whole ? new Map(pack.files.map((name, index) => [name, wrappers[index]])) : undefined;
    } catch {
      packed = undefined;
    }
    if (packed === undefined) packCode = undefined;
  }
  if (packed !== undefined) {
    ownFiles.packed = packed;
    ownFiles.runPacked = callWrapper;
  } else if (submits) {
    ownFiles.loaded = [];
  }

  /**
   * Node's own modules loaded so far, by name (those a program can require; not the
   * `_`-prefixed parts of others, nor the deprecated or experimental ones, which may warn
   * when required).
   */
  function builtinsLoaded() {
    const named = new Set(Module.builtinModules);
    return process.moduleLoadList
      .filter((entry) => entry.startsWith("NativeModule "))
      .map((entry) => entry.slice("NativeModule ".length))
      .filter(
        (name) =>
          named.has(name) &&
          !name.startsWith("_") &&
          !["punycode", "sys", "constants", "wasi"].includes(name),
      );
  }

  /**
   * The pack's source: a comment with the files' names and the Node modules loaded so far,
   * then an array of the files' wrappers. In
   * ASCII: a character beyond it (in a comment or a string) as its `\u` escape, which means
   * the same in JavaScript. So it reads back as latin1, which Node keeps outside V8's heap
   * for a text this long (more than 1 MB): as one JavaScript string, a single `…` made the
   * whole 1.5 MB two bytes a character, on the heap its collections scan.
   */
  function packOf(files) {
    const wrappers = files.map(({ content }) => Module.wrap(withoutShebang(content)).replace(/;\s*$/, ""));
    const names = { files: files.map(({ name }) => name), builtins: builtinsLoaded() };
    const source = `//${JSON.stringify(names)}\n[\n${wrappers.join(",\n")}\n]\n`;
    return source.replace(
      /[\u0080-\uffff]/g,
      (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
  }

  /** Caches of other builds (an upgrade, a rebuild) are removed, all but the latest few. */
  function removeOldBuilds() {
    const builds = fs
      .readdirSync(base)
      .map((name) => ({ name, at: fs.statSync(path.join(base, name)).mtimeMs }))
      .sort((a, b) => b.at - a.at);
    for (const { name } of builds.slice(KEPT_BUILDS)) {
      fs.rmSync(path.join(base, name), { recursive: true, force: true });
    }
  }

  /** Writes `payload` after its CRC-32, through a part file (a reader sees all or nothing). */
  function writeChecked(file, payload) {
    const header = Buffer.alloc(HEADER);
    header.writeUInt32BE(crc32(payload));
    const part = `${file}.${process.pid}.part`;
    fs.writeFileSync(part, Buffer.concat([header, payload]), { mode: 0o600 });
    fs.renameSync(part, file);
  }

  /**
   * Where the pack's code is to be written now, if anywhere: at the first submission its whole
   * code, unless V8 took that already; at exit (no submission then) its partial code, unless
   * V8 took one already.
   */
  function packCodeTarget({ atFirstWork }) {
    if (packCode === undefined || packCode.cache === "whole") return undefined;
    if (atFirstWork) return packCodeFile;
    return packCode.cache === "none" ? partialPackCodeFile : undefined;
  }

  /**
   * Writes the code of the files compiled without a usable cache so far, and `pack` (the
   * files loaded so far, in one) when asked.
   */
  function writeCaches({ pack = false } = {}) {
    const written = toWrite.splice(0);
    const files = pack ? ownFiles.loaded : undefined;
    if (pack) ownFiles.loaded = undefined;
    const packCodeTo = packCodeTarget({ atFirstWork: pack });
    if (packCodeTo !== undefined) written.push({ script: packCode.script, cacheFile: packCodeTo });
    if (pack && packCode !== undefined) packCode.cache = "whole";
    if (written.length === 0 && files === undefined) return;
    try {
      const fresh = !fs.existsSync(path.dirname(folder));
      fs.mkdirSync(folder, { recursive: true, mode: 0o700 });
      if (fresh) removeOldBuilds();
      for (const { script, cacheFile } of written) writeChecked(cacheFile, script.createCachedData());
      if (packCodeTo === packCodeFile) fs.rmSync(partialPackCodeFile, { force: true });
      if (files !== undefined && files.length > 0) {
        // A new pack: the code of the one it replaces is not its code.
        for (const stale of [packCodeFile, partialPackCodeFile]) fs.rmSync(stale, { force: true });
        writeChecked(packFile, Buffer.from(packOf(files), "latin1"));
      }
    } catch {
      // Only a shortcut: the next run compiles from source again.
    }
  }

  // A command that submits (apply, retry, worker): the files loaded by the time its first
  // submission (the process's first POST) is created are written then, on the next turn,
  // once it is on its way. Their code is what ran up to that request, which is what a later
  // run needs before its own: written at exit, it also held what ran after it (polls,
  // downloads, the summary), and V8 deserializes all of a file's cache when the file loads
  // (≈ 6 ms more before apply's first request, docs/decisions.md "Start-up"); those
  // functions are compiled when first called instead. Files loaded later are written at exit.
  const diagnostics = require("node:diagnostics_channel");
  const { setImmediate } = require("node:timers");
  // An apply that only follows a cluster's run never submits: its first steps queued (told by
  // src/cluster/cluster-dispatcher.ts) are its first work instead.
  function atFirstWork() {
    diagnostics.unsubscribe("undici:request:create", atFirstSubmission);
    diagnostics.unsubscribe("runflow:first-steps-queued", atFirstWork);
    setImmediate(() => writeCaches({ pack: true }));
  }
  function atFirstSubmission({ request }) {
    if (request.method === "POST") atFirstWork();
  }
  diagnostics.subscribe("undici:request:create", atFirstSubmission);
  diagnostics.subscribe("runflow:first-steps-queued", atFirstWork);
  process.once("exit", () => writeCaches());
}

/**
 * The bundle's own files as the loader below finds them: those of the command's pack
 * (useCompileCache), and the list of files loaded so far while one is being learned.
 */
const ownFiles = {
  /** File name → its module's wrapper, for the files the pack holds. */
  packed: undefined,
  /** Calls a packed file's wrapper as Node's loader calls a compiled file's. */
  runPacked: undefined,
  /** The files read so far (name and source), while the command's pack is learned. */
  loaded: undefined,
};

/**
 * Node's loader, for each file the bundle requires, resolves `./chunk-NAME.js` (stat, real
 * path, the package's `exports`) and, before compiling a `.js` file, reads the package.json
 * above it to learn whether it is an ES module. The bundle's files require each other by
 * names the build wrote, in this folder, and dist/bin/package.json says they are CommonJS:
 * both are answered directly (docs/decisions.md "Start-up": ≈ 3–5 ms of apply's start).
 * Everything else goes to Node's own.
 */
function loadOwnFilesDirectly() {
  const fs = require("node:fs");
  const path = require("node:path");
  const Module = require("node:module");
  const resolveFilename = Module._resolveFilename;
  Module._resolveFilename = function resolveOwnChunk(request, parent, isMain, options) {
    if (
      options === undefined &&
      request.startsWith("./chunk-") &&
      parent?.filename !== undefined &&
      path.dirname(parent.filename) === __dirname
    ) {
      const file = path.join(__dirname, request);
      if (fs.existsSync(file)) return file;
    }
    return resolveFilename.apply(this, arguments);
  };
  // The precompiled validators (dist/validators/*.cjs, CommonJS by their extension, which
  // Node loads with the `.js` loader) are the bundle's too: a pack holds them as
  // `../validators/NAME`.
  const validators = path.join(__dirname, "..", "validators");
  const loadJs = Module._extensions[".js"];
  Module._extensions[".js"] = function loadOwnJs(module, filename) {
    const folder = path.dirname(filename);
    if (folder !== __dirname && folder !== validators) return loadJs.call(this, module, filename);
    const name = folder === __dirname ? path.basename(filename) : `../validators/${path.basename(filename)}`;
    const packed = ownFiles.packed?.get(name);
    if (packed !== undefined) return ownFiles.runPacked(module, packed, filename);
    const content = fs.readFileSync(filename, "utf8");
    ownFiles.loaded?.push({ name, content });
    module._compile(content, filename);
  };
}

const command = commandOf(process.argv.slice(2));
const verbose = process.argv.includes("--verbose");
const base = verbose ? undefined : cacheBase(process.env);
const folder = base === undefined ? undefined : cacheFolder(base, command);
const pack = folder === undefined ? undefined : readPack(folder, command);
setV8Flags(command, pack?.builtins);
loadOwnFilesDirectly();
if (verbose) {
  process.setSourceMapsEnabled(true);
} else if (folder !== undefined) {
  useCompileCache(folder, command, pack);
}
require("./main.js");
