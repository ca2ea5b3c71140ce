/**
 * Micro-benchmark of the per-entry work batching saves: 256 increments from 8 clients, encoded
 * by the leader, checked by a follower before it stores them (entry_check.ts) and applied by the
 * state machine, once as 256 op 1 entries and once as one op 2 batch entry.
 *
 *     deno bench -A tests/counter/batch_bench.ts
 *
 * Only the counter's own share: the Raft core, storage records and the wire save their
 * per-entry costs on top of this (one entry, record and CRC instead of 256).
 *
 * @module
 */

import { encodeIncrement, IncrementBatch, type IncrementItem } from "../../lib/counter/command.ts";
import { entryProblem } from "../../lib/counter/entry_check.ts";
import { CounterStateMachine } from "../../lib/counter/state_machine.ts";
import { type Entry, EntryType } from "../../lib/raft/mod.ts";

const INCREMENTS = 256;
const CLIENTS = 8;
const IDS = Array.from({ length: CLIENTS }, (_, i) => `bench-client-${i}-0123456789abcdef`);

/** The next 256 requests: 32 in flight per client, each acknowledging all but its window. */
function requests(round: number): IncrementItem[] {
  const items: IncrementItem[] = new Array(INCREMENTS);
  const perClient = INCREMENTS / CLIENTS;
  for (let i = 0; i < INCREMENTS; i++) {
    const seq = round * perClient + Math.floor(i / CLIENTS) + 1;
    items[i] = {
      delta: 1n,
      clientId: IDS[i % CLIENTS],
      seq,
      ackedBelow: Math.max(1, seq - perClient),
    };
  }
  return items;
}

function entry(index: number, data: Uint8Array): Entry {
  return { index, term: 1, type: EntryType.Normal, data };
}

function check(e: Entry): void {
  const problem = entryProblem(e);
  if (problem !== null) throw new Error(problem);
}

let singleRound = 0;
const singleSm = new CounterStateMachine();
Deno.bench("256 increments as 256 entries", { group: "apply", baseline: true }, () => {
  const stampMs = 1_700_000_000_000 + singleRound;
  const items = requests(singleRound++);
  for (let i = 0; i < items.length; i++) {
    const e = entry(i + 1, encodeIncrement({ ...items[i], proposedAtMs: stampMs }));
    check(e);
    singleSm.applyEntry(e.data);
  }
});

let batchRound = 0;
const batchSm = new CounterStateMachine();
Deno.bench("256 increments as one batch entry", { group: "apply" }, () => {
  const stampMs = 1_700_000_000_000 + batchRound;
  const items = requests(batchRound++);
  const batch = new IncrementBatch();
  for (const item of items) batch.add(item);
  const e = entry(1, batch.encode(stampMs));
  check(e);
  batchSm.applyEntry(e.data);
});

// One busy client (as `counter bench` is: one client id for every group), 16 increments per
// round, each acknowledging all but the last WINDOW (16: a group's share of 256 in flight over 16
// groups; 256: one group's): the per-increment cost of applying for a session map of one client
// and its remembered answers, which every node pays for every increment.
for (const window of [16, 256]) {
  const sm = new CounterStateMachine();
  let next = 0;
  Deno.bench(`apply 16 increments of one client, ${window} in flight`, {
    group: "one client",
  }, () => {
    for (let i = 0; i < 16; i++) {
      const seq = ++next;
      sm.apply({
        delta: 1n,
        proposedAtMs: 1,
        clientId: IDS[0],
        seq,
        ackedBelow: Math.max(1, seq - window),
      });
    }
  });
}
