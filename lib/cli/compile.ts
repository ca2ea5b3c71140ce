/**
 * `deno task compile`: builds `dist/counter` with `deno compile`, after checking `DENORT_BIN`.
 *
 * `deno compile` embeds `denort`, Deno's runtime without the CLI, which it downloads unless the
 * environment variable `DENORT_BIN` names a local copy (for builds without network access). A
 * wrong `DENORT_BIN` builds an executable that does not work (the full `deno` binary, for
 * example, gives one that behaves like `deno` itself), so this script refuses, with the reason,
 * anything that is not an executable for this machine, and the `deno` CLI.
 *
 * @example Usage
 * ```sh
 * deno task compile                          # downloads denort
 * DENORT_BIN=/opt/denort deno task compile   # offline
 * ```
 *
 * @module
 */

import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { NODE_V8_FLAGS } from "./self_command.ts";

/** Where `deno task compile` writes the executable, relative to the repository root. */
export const COMPILE_OUTPUT = "dist/counter";

/**
 * Smallest plausible denort: it holds V8 and the whole runtime (tens of MB; 2.x for Linux x86_64
 * is over 60 MB), so any smaller executable is something else.
 */
const DENORT_BYTES_MIN = 20 * 1024 * 1024;

/** How long a candidate denort may take to answer `--version`. */
const VERSION_PROBE_TIMEOUT_MS = 10_000;

/** The `deno compile` arguments that build the executable of `main` at `output`. */
export function compileArgs(output: string, main: string): string[] {
  return ["compile", "-A", `--v8-flags=${NODE_V8_FLAGS.join(",")}`, "--output", output, main];
}

/** The CPU an ELF or Mach-O header names, as `Deno.build.arch` spells it; null if unknown. */
function headerArch(header: Uint8Array): { format: string; arch: string | null } | null {
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  if (header.length >= 20 && view.getUint32(0) === 0x7f454c46) {
    const little = header[5] === 1;
    const machine = view.getUint16(18, little);
    const arch = machine === 0x3e ? "x86_64" : machine === 0xb7 ? "aarch64" : null;
    return { format: "ELF", arch };
  }
  if (header.length >= 8 && view.getUint32(0, true) === 0xfeedfacf) {
    const cpu = view.getUint32(4, true);
    const arch = cpu === 0x01000007 ? "x86_64" : cpu === 0x0100000c ? "aarch64" : null;
    return { format: "Mach-O", arch };
  }
  if (header.length >= 2 && header[0] === 0x4d && header[1] === 0x5a) {
    return { format: "PE", arch: null };
  }
  return null;
}

/** The executable format this machine runs. */
function hostFormat(): string {
  if (Deno.build.os === "darwin") return "Mach-O";
  return Deno.build.os === "windows" ? "PE" : "ELF";
}

/**
 * Checks that `path` can be the `denort` that `deno compile` embeds; resolves with why not, or
 * null. It must be a regular, executable file; an executable of this machine's format and CPU;
 * large enough to hold a runtime; and not the `deno` CLI (found by its name, or by what it prints
 * for `--version`). A real
 * denort is not identified positively: it has no version output of its own to check.
 */
export async function denortProblem(path: string): Promise<string | null> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    return err instanceof Deno.errors.NotFound ? "no such file" : (err as Error).message;
  }
  if (!info.isFile) return "not a file";
  if (Deno.build.os !== "windows" && ((info.mode ?? 0) & 0o111) === 0) return "not executable";
  const name = basename(path).toLowerCase();
  if (name === "deno" || name === "deno.exe") {
    return "that is the deno CLI, not denort (denort is a separate download)";
  }
  const file = await Deno.open(path);
  const header = new Uint8Array(64);
  let read: number | null;
  try {
    read = await file.read(header);
  } finally {
    file.close();
  }
  const found = headerArch(header.subarray(0, read ?? 0));
  if (found === null) {
    return "not an executable binary (a script or a package wrapper?)";
  }
  if (found.format !== hostFormat()) {
    return `a ${found.format} executable, but this machine runs ${hostFormat()}`;
  }
  if (found.arch !== null && found.arch !== Deno.build.arch) {
    return `built for ${found.arch}, but this machine is ${Deno.build.arch}`;
  }
  if (info.size < DENORT_BYTES_MIN) {
    return `an executable of ${info.size} bytes, too small to be denort (tens of MB)`;
  }
  const versionLine = await versionOutput(path);
  if (/^deno \d+\.\d+\.\d+/.test(versionLine) && /\btypescript\b/.test(versionLine)) {
    return `that is the deno CLI (it prints '${versionLine.split("\n")[0]}'), not denort`;
  }
  return null;
}

/** What `path --version` prints within a few seconds; "" if it prints nothing or hangs. */
async function versionOutput(path: string): Promise<string> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), VERSION_PROBE_TIMEOUT_MS);
  try {
    const out = await new Deno.Command(path, {
      args: ["--version"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: abort.signal,
    }).output();
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return "";
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `deno task compile`; resolves with the exit status. */
export async function runCompile(env: (name: string) => string | undefined): Promise<number> {
  const denortBin = env("DENORT_BIN");
  if (denortBin !== undefined) {
    const problem = await denortProblem(denortBin);
    if (problem !== null) {
      console.error(
        `deno task compile: DENORT_BIN=${denortBin} is not a denort binary: ${problem}. ` +
          `Point it at the denort of Deno ${Deno.version.deno} for this machine ` +
          `(denort-<target>.zip of the Deno release), or unset it to let deno compile ` +
          `download denort`,
      );
      return 1;
    }
  }
  const root = fileURLToPath(new URL("../../", import.meta.url));
  const main = fileURLToPath(new URL("../../main.ts", import.meta.url));
  const status = await new Deno.Command(Deno.execPath(), {
    args: compileArgs(COMPILE_OUTPUT, main),
    cwd: root,
    stdin: "null",
  }).spawn().status;
  return status.code;
}

if (import.meta.main) {
  Deno.exit(await runCompile((name) => Deno.env.get(name)));
}
