/**
 * `counter certs --out DIR --hosts HOST,...`: writes a quick-start CA and node certificate
 * (ca.crt, ca.key, node.crt, node.key) made by `lib/security/certs.ts`. Keys are written with
 * mode 0600; existing files are never overwritten without `--force`.
 *
 * @module
 */

import { join } from "node:path";
import type { CertsOptions } from "../args.ts";
import { createCertificates } from "../../security/certs.ts";
import { pathExists } from "../../storage/atomic_file.ts";
import { printErrorLine, printLine } from "../output.ts";
import { EXIT_FAILED, EXIT_OK } from "./_client.ts";

/** The files `counter certs` writes, in the order it lists them. */
export const CERT_FILES = ["ca.crt", "ca.key", "node.crt", "node.key"] as const;

/** What `counter certs` uses from its surroundings; tests pass fakes. */
export interface CertsDeps {
  /** Prints one line on stdout. */
  out?: (line: string) => void;
  /** Prints one line on stderr. */
  err?: (line: string) => void;
}

/** Runs `counter certs`; resolves with the exit status. */
export async function runCerts(options: CertsOptions, deps: CertsDeps = {}): Promise<number> {
  const out = deps.out ?? printLine;
  const err = deps.err ?? printErrorLine;
  const paths = CERT_FILES.map((name) => join(options.outDir, name));
  if (!options.force) {
    const taken = [];
    for (const path of paths) if (await pathExists(path)) taken.push(path);
    if (taken.length > 0) {
      err(`counter certs: ${taken.join(", ")} already exist; give --force to overwrite`);
      return EXIT_FAILED;
    }
  }
  let set;
  try {
    set = await createCertificates({ hosts: options.hosts, validDays: options.days });
  } catch (error) {
    err(`counter certs: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT_FAILED;
  }
  await Deno.mkdir(options.outDir, { recursive: true });
  const contents = [set.ca.certPem, set.ca.keyPem, set.node.certPem, set.node.keyPem];
  for (let i = 0; i < paths.length; i++) {
    const secret = paths[i].endsWith(".key");
    // Keys are created 0600 and chmod-ed again in case the file existed with a wider mode.
    await Deno.writeTextFile(paths[i], contents[i], { mode: secret ? 0o600 : 0o644 });
    if (secret) await Deno.chmod(paths[i], 0o600);
  }
  out(`wrote ${paths.join(", ")}`);
  out(`node certificate valid for ${options.hosts.join(",")} for ${options.days} days`);
  return EXIT_OK;
}
