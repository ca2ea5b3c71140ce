import assert from "node:assert/strict";
import {
  Progress,
  ProgressState,
  quorumMatchIndex,
  tallyVotes,
  VoteResult,
} from "../../lib/raft/progress.ts";

Deno.test("a new peer starts in Probe, unpaused, with nothing matched", () => {
  const pr = new Progress(5, 4);
  assert.equal(pr.state, ProgressState.Probe);
  assert.equal(pr.match, 0);
  assert.equal(pr.next, 5);
  assert.equal(pr.isPaused(), false);
});

Deno.test("Probe: one AppendEntries at a time, until the peer answers", () => {
  const pr = new Progress(5, 4);
  pr.sentEntries(7, 3);
  assert.equal(pr.isPaused(), true);
  assert.equal(pr.next, 5, "a probe does not move next: its fate is unknown");
  assert.equal(pr.inflightCount(), 0);
  assert.equal(pr.maybeUpdate(7), true);
  assert.equal(pr.isPaused(), false);
  assert.equal(pr.match, 7);
  assert.equal(pr.next, 8);
});

Deno.test("Probe: an empty probe also pauses the peer", () => {
  const pr = new Progress(5, 4);
  pr.sentEntries(4, 0);
  assert.equal(pr.isPaused(), true);
});

Deno.test("Replicate: streams optimistically, advancing next per message", () => {
  const pr = new Progress(1, 4);
  pr.maybeUpdate(3);
  pr.becomeReplicate();
  assert.equal(pr.next, 4);
  pr.sentEntries(5, 2);
  pr.sentEntries(6, 1);
  assert.equal(pr.next, 7);
  assert.equal(pr.inflightCount(), 2);
  assert.equal(pr.isPaused(), false);
});

Deno.test("Replicate: the in-flight window is bounded and acks free it oldest first", () => {
  const pr = new Progress(1, 3);
  pr.becomeReplicate();
  pr.sentEntries(1, 1);
  pr.sentEntries(2, 1);
  pr.sentEntries(3, 1);
  assert.equal(pr.isPaused(), true, "window of 3 is full");
  assert.equal(pr.maybeUpdate(1), true);
  assert.equal(pr.inflightCount(), 2);
  assert.equal(pr.isPaused(), false);
  // One ack covering several messages frees all of them.
  assert.equal(pr.maybeUpdate(3), true);
  assert.equal(pr.inflightCount(), 0);
});

Deno.test("Replicate: an empty AppendEntries takes no slot in the window", () => {
  const pr = new Progress(1, 1);
  pr.becomeReplicate();
  pr.sentEntries(0, 0);
  assert.equal(pr.inflightCount(), 0);
  assert.equal(pr.isPaused(), false);
});

Deno.test("Snapshot: nothing else is sent while a snapshot is in flight", () => {
  const pr = new Progress(1, 4);
  pr.becomeSnapshot(10);
  assert.equal(pr.state, ProgressState.Snapshot);
  assert.equal(pr.pendingSnapshot, 10);
  assert.equal(pr.isPaused(), true);
});

Deno.test("leaving Snapshot resumes after the snapshot, or after the match if it failed", () => {
  const sent = new Progress(1, 4);
  sent.maybeUpdate(2);
  sent.becomeSnapshot(10);
  sent.becomeProbe();
  assert.equal(sent.next, 11);
  assert.equal(sent.pendingSnapshot, 0);

  const failed = new Progress(1, 4);
  failed.maybeUpdate(2);
  failed.becomeSnapshot(10);
  failed.pendingSnapshot = 0; // what the leader does when the send failed
  failed.becomeProbe();
  assert.equal(failed.next, 3);
});

Deno.test("changing state forgets the messages in flight", () => {
  const pr = new Progress(1, 4);
  pr.becomeReplicate();
  pr.sentEntries(1, 1);
  pr.sentEntries(2, 1);
  pr.becomeProbe();
  assert.equal(pr.inflightCount(), 0);
  assert.equal(pr.next, 1, "probe restarts just after the match");
});

Deno.test("maybeUpdate: stale or duplicated acks change nothing and never move next back", () => {
  const pr = new Progress(1, 4);
  assert.equal(pr.maybeUpdate(5), true);
  assert.equal(pr.maybeUpdate(5), false);
  assert.equal(pr.maybeUpdate(3), false);
  assert.equal(pr.match, 5);
  assert.equal(pr.next, 6);
  pr.becomeReplicate();
  pr.sentEntries(9, 4);
  assert.equal(pr.maybeUpdate(5), false);
  assert.equal(pr.next, 10, "next stays past what is in flight");
});

Deno.test("maybeDecrTo in Replicate: a rejection of an already matched index is stale", () => {
  const pr = new Progress(1, 4);
  pr.maybeUpdate(5);
  pr.becomeReplicate();
  pr.sentEntries(8, 3);
  assert.equal(pr.maybeDecrTo(5, 5), false);
  assert.equal(pr.maybeDecrTo(4, 7), false);
  assert.equal(pr.next, 9);
  assert.equal(pr.maybeDecrTo(8, 6), true);
  assert.ok(pr.next >= 6 && pr.next <= 7, `next ${pr.next} within (match, hint + 1]`);
});

Deno.test("maybeDecrTo: a stale duplicated rejection never lowers the match", () => {
  // The follower rejected a probe at 10 while it held 5 entries; it has since caught up to 50.
  // Copies of that old rejection arrive late, in each replication state.
  const pr = new Progress(1, 4);
  pr.maybeUpdate(50);
  pr.becomeReplicate();
  pr.sentEntries(60, 10);
  assert.equal(pr.maybeDecrTo(10, 5), false, "Replicate");
  assert.equal(pr.match, 50);
  assert.equal(pr.next, 61);
  pr.becomeProbe();
  pr.sentEntries(50, 0);
  assert.equal(pr.maybeDecrTo(10, 5), false, "Probe");
  assert.equal(pr.match, 50);
  assert.equal(pr.next, 51);
  pr.becomeSnapshot(80);
  assert.equal(pr.maybeDecrTo(10, 5), false, "Snapshot");
  assert.equal(pr.match, 50);
  // Nor does one of the match itself: only a heartbeat answer can lower it (distrustMatch).
  pr.becomeReplicate();
  assert.equal(pr.maybeDecrTo(50, 5), false, "Replicate, at the match");
  pr.becomeProbe();
  pr.sentEntries(50, 0);
  pr.maybeDecrTo(50, 5);
  assert.equal(pr.match, 50, "Probe, at the match");
  assert.equal(pr.next, 51);
});

Deno.test("maybeDecrTo in Probe: only the answer to the latest probe counts", () => {
  const pr = new Progress(10, 4);
  pr.sentEntries(9, 0);
  assert.equal(pr.maybeDecrTo(5, 3), false, "answer to an older probe");
  assert.equal(pr.next, 10);
  assert.equal(pr.isPaused(), true);
  assert.equal(pr.maybeDecrTo(9, 3), true);
  assert.equal(pr.next, 4, "jumps to the follower's hint + 1");
  assert.equal(pr.isPaused(), false, "free to probe again");
});

Deno.test("maybeDecrTo in Probe: never goes below match + 1 nor above the rejected index", () => {
  const table: { match: number; next: number; rejected: number; hint: number; want: number }[] = [
    { match: 0, next: 10, rejected: 9, hint: 100, want: 9 }, // a hint past the rejection is capped
    { match: 0, next: 10, rejected: 9, hint: 0, want: 1 },
    { match: 4, next: 10, rejected: 9, hint: 1, want: 5 }, // the match is known good
    { match: 0, next: 1, rejected: 0, hint: 0, want: 1 }, // never below index 1
  ];
  for (const c of table) {
    const pr = new Progress(c.next, 4);
    pr.match = c.match;
    assert.equal(pr.maybeDecrTo(c.rejected, c.hint), true, JSON.stringify(c));
    assert.equal(pr.next, c.want, JSON.stringify(c));
  }
});

Deno.test("quorumMatchIndex: the highest index held by a majority of voters", () => {
  const table: { matches: number[]; want: number }[] = [
    { matches: [], want: 0 },
    { matches: [7], want: 7 },
    { matches: [7, 3], want: 3 },
    { matches: [7, 3, 5], want: 5 },
    { matches: [1, 1, 9], want: 1 },
    { matches: [7, 3, 5, 9], want: 5 },
    { matches: [2, 2, 2, 9], want: 2 },
    { matches: [7, 3, 5, 9, 1], want: 5 },
    { matches: [0, 0, 8, 8, 8], want: 8 },
  ];
  for (const { matches, want } of table) {
    const voters = matches.map((_, i) => `n${i}`);
    const got = quorumMatchIndex(voters, (id) => matches[Number(id.slice(1))]);
    assert.equal(got, want, JSON.stringify(matches));
  }
});

Deno.test("tallyVotes: won with a majority of yes, lost once a majority is out of reach", () => {
  const voters = ["a", "b", "c", "d", "e"];
  const table: { votes: [string, boolean][]; want: VoteResult }[] = [
    { votes: [], want: VoteResult.Pending },
    { votes: [["a", true]], want: VoteResult.Pending },
    { votes: [["a", true], ["b", true]], want: VoteResult.Pending },
    { votes: [["a", true], ["b", true], ["c", true]], want: VoteResult.Won },
    { votes: [["a", true], ["b", false], ["c", false]], want: VoteResult.Pending },
    { votes: [["a", true], ["b", false], ["c", false], ["d", false]], want: VoteResult.Lost },
    // Votes from non-voters (learners, removed nodes) count for nothing.
    { votes: [["a", true], ["b", true], ["x", true], ["y", true]], want: VoteResult.Pending },
  ];
  for (const { votes, want } of table) {
    assert.equal(tallyVotes(voters, new Map(votes)), want, JSON.stringify(votes));
  }
});

Deno.test("tallyVotes: a single voter wins alone; an even group needs more than half", () => {
  assert.equal(tallyVotes(["a"], new Map([["a", true]])), VoteResult.Won);
  assert.equal(tallyVotes(["a"], new Map([["a", false]])), VoteResult.Lost);
  const four = ["a", "b", "c", "d"];
  assert.equal(tallyVotes(four, new Map([["a", true], ["b", true]])), VoteResult.Pending);
  assert.equal(
    tallyVotes(four, new Map([["a", true], ["b", true], ["c", true]])),
    VoteResult.Won,
  );
  assert.equal(tallyVotes(four, new Map([["c", false], ["d", false]])), VoteResult.Lost);
});
