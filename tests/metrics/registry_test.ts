/**
 * The metrics registry: its text exposition, checked line by line and by the real
 * `promtool check metrics`.
 */

import assert from "node:assert/strict";
import { Counter, Histogram, Registry } from "../../lib/metrics/registry.ts";
import { promtoolCheck, promtoolVerdict } from "./_promtool.ts";

function sample(): Registry {
  const r = new Registry();
  const requests = r.counter("demo_requests_total", "Requests answered.", ["op", "result"]);
  requests.labels("incr", "ok").inc(3);
  requests.labels("get", "not_leader").inc();
  r.gauge("demo_term", "Current term.").labels().set(7);
  r.gauge("demo_info", 'Odd "label" text\nand a backslash \\.', ["id"])
    .labels('a"b\\c\nd').set(1);
  const latency = r.histogram("demo_duration_seconds", "Latency.", [0.01, 0.1, 1], ["op"]);
  const h = latency.labels("incr");
  for (const v of [0.005, 0.01, 0.05, 0.5, 2]) h.observe(v);
  return r;
}

Deno.test("the exposition has HELP, TYPE, labelled series and cumulative histogram buckets", () => {
  const text = sample().expose();
  const lines = text.split("\n");
  assert.ok(text.endsWith("\n"));
  assert.ok(lines.includes("# TYPE demo_requests_total counter"));
  assert.ok(lines.includes('demo_requests_total{op="incr",result="ok"} 3'));
  assert.ok(lines.includes('demo_requests_total{op="get",result="not_leader"} 1'));
  assert.ok(lines.includes("# TYPE demo_term gauge"));
  assert.ok(lines.includes("demo_term 7"));
  assert.ok(lines.includes('# HELP demo_info Odd "label" text\\nand a backslash \\\\.'));
  assert.ok(lines.includes('demo_info{id="a\\"b\\\\c\\nd"} 1'));
  assert.ok(lines.includes("# TYPE demo_duration_seconds histogram"));
  // 0.01 falls in le="0.01" (bounds are inclusive); 2 only in +Inf.
  assert.ok(lines.includes('demo_duration_seconds_bucket{op="incr",le="0.01"} 2'));
  assert.ok(lines.includes('demo_duration_seconds_bucket{op="incr",le="0.1"} 3'));
  assert.ok(lines.includes('demo_duration_seconds_bucket{op="incr",le="1"} 4'));
  assert.ok(lines.includes('demo_duration_seconds_bucket{op="incr",le="+Inf"} 5'));
  assert.ok(lines.includes('demo_duration_seconds_sum{op="incr"} 2.565'));
  assert.ok(lines.includes('demo_duration_seconds_count{op="incr"} 5'));
});

Deno.test("a series is created once and recording into it does not create another", () => {
  const r = new Registry();
  const family = r.counter("x_total", "X.", ["k"]);
  const a = family.labels("v");
  assert.equal(family.labels("v"), a);
  a.inc();
  a.inc(2);
  assert.equal(a.value, 3);
  assert.ok(a instanceof Counter);
  assert.throws(() => a.inc(-1), RangeError);
  assert.throws(() => family.labels(), /takes 1 label values/);
});

Deno.test("bad names, reserved labels, unsorted buckets and duplicates are refused", () => {
  const r = new Registry();
  assert.throws(() => r.gauge("bad-name", "x"), /bad metric name/);
  assert.throws(() => r.gauge("g", "x", ["le"]), /bad label name/);
  assert.throws(() => r.gauge("g", "x", ["__x"]), /bad label name/);
  assert.throws(() => r.histogram("h", "x", [1, 1]), /ascending/);
  r.gauge("g", "x");
  assert.throws(() => r.gauge("g", "x"), /registered twice/);
});

Deno.test("histogram bounds are inclusive upper bounds", () => {
  const h = new Histogram([1, 2]);
  h.observe(1);
  h.observe(1.5);
  h.observe(3);
  assert.deepEqual([...h.counts], [1, 1, 1]);
});

Deno.test("collectors run at every exposition", () => {
  const r = new Registry();
  const g = r.gauge("g", "x").labels();
  let n = 0;
  r.onCollect(() => g.set(++n));
  assert.match(r.expose(), /\ng 1\n/);
  assert.match(r.expose(), /\ng 2\n/);
});

Deno.test("promtool check metrics accepts the exposition", async () => {
  const verdict = await promtoolVerdict(sample().expose(), "the registry's exposition");
  if (verdict === null) return;
  assert.equal(verdict.code, 0, verdict.output);
});

Deno.test("promtool check metrics rejects a broken exposition (the check can fail)", async () => {
  const verdict = await promtoolVerdict("demo_x{a=1} 2\n", "a broken exposition");
  if (verdict === null) return;
  assert.notEqual(verdict.code, 0);
  // And the lint of a counter without _total is what promtool reports, not a crash.
  const lint = await promtoolCheck("# HELP c C.\n# TYPE c counter\nc 1\n");
  assert.notEqual(lint.code, 0, lint.output);
  assert.match(lint.output, /_total/);
});
