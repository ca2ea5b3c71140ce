/**
 * Tests of `counter recover` (lib/cli/commands/recover.ts and its argument parsing): the
 * confirmation, the refusal without a terminal, and what it prints.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseRecoverArgs } from "../../lib/cli/args.ts";
import { type RecoverDeps, runRecover } from "../../lib/cli/commands/recover.ts";
import { bootstrapState, EntryType } from "../../lib/raft/mod.ts";
import { DataDir } from "../../lib/storage/mod.ts";
import { tempDir } from "../storage/_helpers.ts";
import { assertUsage } from "./_usage.ts";

const ID = "127.0.0.1:8081";
const GROUP = "counter";

async function stoppedNode(path: string): Promise<void> {
  const dir = await DataDir.open(path, { nodeId: ID, group: GROUP });
  const boot = bootstrapState({ voters: [ID, "127.0.0.1:8082", "127.0.0.1:8083"], learners: [] });
  await dir.append([...boot.entries, {
    index: 2,
    term: 2,
    type: EntryType.Normal,
    data: new Uint8Array(),
  }]);
  await dir.saveHardState({ term: 2, vote: "" });
  await dir.close();
}

/** Fake surroundings: records output, answers the prompt with `answer`. */
function fakes(terminal: boolean, answer: string | null = null) {
  const out: string[] = [];
  const err: string[] = [];
  const prompts: string[] = [];
  const deps: RecoverDeps = {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    isTerminal: () => terminal,
    ask: (prompt) => {
      prompts.push(prompt);
      return Promise.resolve(answer);
    },
  };
  return { out, err, prompts, deps };
}

async function lastIndexOf(path: string): Promise<number> {
  const dir = await DataDir.open(path, { nodeId: ID, group: GROUP });
  try {
    return dir.lastIndex();
  } finally {
    await dir.close();
  }
}

Deno.test("recover takes --data and needs --force-new-cluster", () => {
  assert.deepEqual(parseRecoverArgs(["--data", "d", "--force-new-cluster"]), {
    dataDir: "d",
    yes: false,
    json: false,
  });
  assert.deepEqual(parseRecoverArgs(["--force-new-cluster", "--yes", "--json", "--data=d"]), {
    dataDir: "d",
    yes: true,
    json: true,
  });
  assertUsage(() => parseRecoverArgs(["--force-new-cluster"]), /missing required option --data/);
  assertUsage(() => parseRecoverArgs(["--data", "d"]), /missing --force-new-cluster/);
  assertUsage(() => parseRecoverArgs(["--data", "d", "--force-new-cluster", "x"]), /unexpected/);
  assertUsage(() => parseRecoverArgs(["--data", "d", "--force"]), /unknown option --force/);
});

Deno.test("without --yes and without a terminal, recover prints the plan, refuses, changes nothing", async () => {
  await using scratch = await tempDir("recover_cli_");
  const path = join(scratch.path, "n1");
  await stoppedNode(path);
  const f = fakes(false);
  assert.equal(await runRecover({ dataDir: path, yes: false, json: false }, f.deps), 2);
  assert.deepEqual(f.out, []);
  assert.deepEqual(f.prompts, []);
  const text = f.err.join("\n");
  assert.match(text, new RegExp(`force node ${ID} \\(group ${GROUP}\\) into a new one-node`));
  assert.match(text, /last entry +index 2, term 2/);
  assert.match(text, new RegExp(`a configuration naming only ${ID}, at index 3, term 3`));
  assert.match(text, /increments that only the lost members held are gone for good/);
  assert.match(f.err.at(-1)!, /refusing to run without --yes: stdin is not a terminal/);
  assert.equal(await lastIndexOf(path), 2);
});

Deno.test("on a terminal, recover runs only when the answer is 'yes'", async () => {
  await using scratch = await tempDir("recover_cli_");
  const path = join(scratch.path, "n1");
  await stoppedNode(path);
  for (const answer of ["no", "", null, "y"]) {
    const f = fakes(true, answer);
    assert.equal(await runRecover({ dataDir: path, yes: false, json: false }, f.deps), 1);
    assert.deepEqual(f.prompts, [`Type 'yes' to force ${ID} now: `]);
    assert.match(f.err.at(-1)!, /not confirmed; nothing changed/);
    assert.equal(await lastIndexOf(path), 2);
  }
  const f = fakes(true, "yes");
  assert.equal(await runRecover({ dataDir: path, yes: false, json: false }, f.deps), 0);
  assert.match(
    f.out[0],
    new RegExp(`^recovered: ${ID} is now the only voter of cluster [0-9a-f]{16}`),
  );
  assert.match(f.out.join("\n"), /--join 127\.0\.0\.1:8081/);
  assert.equal(await lastIndexOf(path), 3);
});

Deno.test("recover --yes --json asks nothing and prints one JSON line", async () => {
  await using scratch = await tempDir("recover_cli_");
  const path = join(scratch.path, "n1");
  await stoppedNode(path);
  const f = fakes(false);
  assert.equal(await runRecover({ dataDir: path, yes: true, json: true }, f.deps), 0);
  assert.deepEqual(f.err, []);
  assert.equal(f.out.length, 1);
  const done = JSON.parse(f.out[0]);
  assert.equal(done.node, ID);
  assert.equal(done.index, 3);
  assert.equal(done.term, 3);
  assert.deepEqual(done.voters, [ID]);
  assert.match(done.clusterId, /^[0-9a-f]{16}$/);
});

Deno.test("recover of a dir in use exits 1 with one line", async () => {
  await using scratch = await tempDir("recover_cli_");
  const path = join(scratch.path, "n1");
  await stoppedNode(path);
  const running = await DataDir.open(path, { nodeId: ID, group: GROUP });
  try {
    const f = fakes(true, "yes");
    assert.equal(await runRecover({ dataDir: path, yes: true, json: false }, f.deps), 1);
    assert.equal(f.err.length, 1);
    assert.match(f.err[0], /^counter recover: data dir .* is in use by a running process/);
  } finally {
    await running.close();
  }
});
