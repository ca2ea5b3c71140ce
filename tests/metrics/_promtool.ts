/**
 * Runs the real `promtool check metrics` (Debian package `prometheus`) on an exposition.
 *
 * @module
 */

/** Why promtool cannot be run here, or null when it can. */
export async function promtoolMissing(): Promise<string | null> {
  try {
    const out = await new Deno.Command("promtool", {
      args: ["--version"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success ? null : `'promtool --version' exited ${out.code}`;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return "promtool is not installed (Debian package 'prometheus'; .ci/run installs it)";
    }
    throw error;
  }
}

/**
 * Feeds `text` to `promtool check metrics`; returns its exit code and output. Lint findings
 * (such as a counter without `_total`) make it exit 1 and are printed there.
 */
export async function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  const child = new Deno.Command("promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  const decoder = new TextDecoder();
  return { code: out.code, output: decoder.decode(out.stdout) + decoder.decode(out.stderr) };
}

/**
 * Checks `text` with promtool and returns its verdict; when promtool is missing, prints plainly
 * that the check was skipped and why, and returns null.
 */
export async function promtoolVerdict(
  text: string,
  what: string,
): Promise<{ code: number; output: string } | null> {
  const missing = await promtoolMissing();
  if (missing !== null) {
    console.log(`SKIPPED promtool check of ${what}: ${missing}`);
    return null;
  }
  return await promtoolCheck(text);
}
