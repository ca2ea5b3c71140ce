import assert from "node:assert/strict";
import {
  applyConfChange,
  type ConfChange,
  decodeConfState,
  encodeConfState,
  sameConf,
} from "../../lib/raft/conf.ts";
import { bootstrapState, type ConfState, EntryType } from "../../lib/raft/mod.ts";

const encoder = new TextEncoder();

function conf(voters: string[], learners: string[] = []): ConfState {
  return { voters, learners };
}

Deno.test("a configuration survives encoding and decoding, members sorted", () => {
  const encoded = encodeConfState(conf(["c:3", "a:1", "b:2"], ["e:5", "d:4"]));
  assert.deepEqual(decodeConfState(encoded), conf(["a:1", "b:2", "c:3"], ["d:4", "e:5"]));
});

Deno.test("encoding does not depend on the members' order, so every node writes the same bytes", () => {
  assert.deepEqual(encodeConfState(conf(["b", "a"])), encodeConfState(conf(["a", "b"])));
});

Deno.test("encoding leaves the caller's configuration untouched", () => {
  const c = conf(["b", "a"], ["d", "c"]);
  encodeConfState(c);
  assert.deepEqual(c, conf(["b", "a"], ["d", "c"]));
});

Deno.test("decoding rejects data that is not a configuration", () => {
  const bad = [
    "null",
    "42",
    "{}",
    `{"voters":["a"]}`,
    `{"voters":"a","learners":[]}`,
    `{"voters":[1],"learners":[]}`,
    `{"voters":[],"learners":[null]}`,
  ];
  for (const json of bad) {
    assert.throws(() => decodeConfState(encoder.encode(json)), Error, json);
  }
  assert.throws(() => decodeConfState(encoder.encode("not json")), SyntaxError);
});

Deno.test("single-server changes: each kind moves exactly one member", () => {
  const base = conf(["a", "b"], ["c"]);
  const cases: { change: ConfChange; want: ConfState }[] = [
    { change: { type: "addVoter", node: "d" }, want: conf(["a", "b", "d"], ["c"]) },
    { change: { type: "addLearner", node: "d" }, want: conf(["a", "b"], ["c", "d"]) },
    { change: { type: "promote", node: "c" }, want: conf(["a", "b", "c"], []) },
    { change: { type: "remove", node: "b" }, want: conf(["a"], ["c"]) },
    { change: { type: "remove", node: "c" }, want: conf(["a", "b"], []) },
    // Adding a learner as a voter promotes it rather than listing it twice.
    { change: { type: "addVoter", node: "c" }, want: conf(["a", "b", "c"], []) },
  ];
  for (const { change, want } of cases) {
    assert.deepEqual(applyConfChange(base, change), want, JSON.stringify(change));
  }
  assert.deepEqual(base, conf(["a", "b"], ["c"]), "the input is not modified");
});

Deno.test("single-server changes that make no sense are refused with a reason", () => {
  const base = conf(["a", "b"], ["c"]);
  const refused: ConfChange[] = [
    { type: "addVoter", node: "a" },
    { type: "addLearner", node: "a" },
    { type: "addLearner", node: "c" },
    { type: "promote", node: "a" },
    { type: "promote", node: "z" },
    { type: "remove", node: "z" },
  ];
  for (const change of refused) {
    const got = applyConfChange(base, change);
    assert.equal(typeof got, "string", JSON.stringify(change));
  }
});

Deno.test("the last voter cannot be removed: a group with no voters can never elect a leader", () => {
  assert.equal(typeof applyConfChange(conf(["a"], ["b"]), { type: "remove", node: "a" }), "string");
  assert.deepEqual(applyConfChange(conf(["a"], ["b"]), { type: "remove", node: "b" }), conf(["a"]));
});

Deno.test("the result of a change is sorted", () => {
  const got = applyConfChange(conf(["b", "d"]), { type: "addVoter", node: "a" });
  assert.deepEqual(got, conf(["a", "b", "d"]));
});

Deno.test("sameConf compares members and their roles", () => {
  assert.equal(sameConf(conf(["a", "b"], ["c"]), conf(["a", "b"], ["c"])), true);
  assert.equal(sameConf(conf(["a", "b"], ["c"]), conf(["a", "b", "c"])), false);
  assert.equal(sameConf(conf(["a", "b"]), conf(["a"], ["b"])), false);
  assert.equal(sameConf(conf(["a"]), conf(["a", "b"])), false);
});

Deno.test("a bootstrapped member starts in term 1 with the initial configuration at index 1", () => {
  const c = conf(["a", "b", "c"], ["d"]);
  const state = bootstrapState(c);
  assert.deepEqual(state.hardState, { term: 1, vote: "" });
  assert.equal(state.snapshot, null);
  assert.equal(state.entries.length, 1);
  const [e] = state.entries;
  assert.equal(e.index, 1);
  assert.equal(e.term, 1);
  assert.equal(e.type, EntryType.Config);
  assert.deepEqual(decodeConfState(e.data), c);
  // Every member must write byte-identical entries, or their logs would not match.
  assert.deepEqual(bootstrapState(conf(["c", "a", "b"], ["d"])).entries[0].data, e.data);
});
