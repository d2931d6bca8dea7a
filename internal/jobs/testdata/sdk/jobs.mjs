// Drives longhook's batches, files and interactions with the official
// @google/genai SDK (pinned in package.json) and checks what the SDK reads
// back (docs: product.md §3, §5; gemini-reference.md §5, §7).
//
// Usage: node jobs.mjs batches|files|interactions
// Environment: LONGHOOK_BASE_URL, LONGHOOK_API_KEY, LONGHOOK_HOOK_URL (the
// dynamic webhook receiver), optionally LONGHOOK_API_VERSION.
// Prints one line "RESULT <json>" for the Go test and exits non-zero on the
// first failed check. Run by internal/jobs' Go tests.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GoogleGenAI } from "@google/genai";

const baseUrl = process.env.LONGHOOK_BASE_URL;
const apiKey = process.env.LONGHOOK_API_KEY;
const hook = process.env.LONGHOOK_HOOK_URL;
const apiVersion = process.env.LONGHOOK_API_VERSION || undefined;
assert.ok(baseUrl && apiKey && hook, "LONGHOOK_BASE_URL, LONGHOOK_API_KEY and LONGHOOK_HOOK_URL are required");

const ai = new GoogleGenAI({ apiKey, apiVersion, httpOptions: { baseUrl } });
const model = "gemini-2.5-flash";
const tmp = mkdtempSync(join(tmpdir(), "longhook-sdk-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

// poll calls get until done(result) holds (the client side of a
// long-running job; bounded by a deadline).
async function poll(get, done, what) {
  const deadline = Date.now() + 20000;
  for (;;) {
    const v = await get();
    if (done(v)) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function expectStatus(promise, status) {
  try {
    await promise;
  } catch (err) {
    assert.equal(err.status ?? err.statusCode, status, `HTTP status of ${err}`);
    return err;
  }
  assert.fail(`expected HTTP ${status}`);
}

const terminal = (b) => !["JOB_STATE_PENDING", "JOB_STATE_RUNNING"].includes(b.state);

async function download(name) {
  const path = join(tmp, name.replace("/", "_"));
  await ai.files.download({ file: name, downloadPath: path });
  return readFileSync(path);
}

async function batches() {
  const meta = { job_group: "nightly-eval", priority: "high" };
  const src = ["one", "two", "three"].map((w) => ({
    contents: [{ role: "user", parts: [{ text: `hello ${w}` }] }],
    metadata: { key: `k-${w}` },
  }));
  const job = await ai.batches.create({
    model,
    src,
    config: { displayName: "sdk-batch", webhookConfig: { uris: [hook], userMetadata: meta } },
  });
  assert.match(job.name, /^batches\/[a-z0-9]+$/);
  assert.equal(job.displayName, "sdk-batch");
  assert.equal(job.model, `models/${model}`);
  assert.ok(["JOB_STATE_PENDING", "JOB_STATE_RUNNING"].includes(job.state), job.state);

  const done = await poll(() => ai.batches.get({ name: job.name }), terminal, "the batch");
  assert.equal(done.state, "JOB_STATE_SUCCEEDED");
  assert.ok(done.createTime && done.updateTime && done.endTime, "times");
  assert.match(done.dest.fileName, /^files\/batch-[a-z0-9]+$/);
  assert.equal(done.dest.inlinedResponses.length, 3);
  done.dest.inlinedResponses.forEach((r, i) => {
    assert.deepEqual(r.metadata, src[i].metadata);
    assert.match(r.response.candidates[0].content.parts[0].text, new RegExp(src[i].contents[0].parts[0].text));
  });
  const lines = (await download(done.dest.fileName)).toString().trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.key), ["k-one", "k-two", "k-three"]);
  assert.ok(lines.every((l) => l.response.candidates[0].content.parts[0].text), "every line has a response");

  const listed = [];
  for await (const b of await ai.batches.list({ config: { pageSize: 2 } })) listed.push(b.name);
  assert.ok(listed.includes(job.name), "list includes the batch");

  // A batch read from an uploaded JSONL file.
  const input = ["a", "b"].map((k) => JSON.stringify({ key: `file-${k}`, request: { contents: [{ parts: [{ text: `from file ${k}` }] }] } })).join("\n");
  const inFile = await ai.files.upload({ file: new Blob([input], { type: "application/jsonl" }), config: { mimeType: "application/jsonl" } });
  const fromFile = await ai.batches.create({ model, src: inFile.name });
  const fileDone = await poll(() => ai.batches.get({ name: fromFile.name }), terminal, "the file batch");
  assert.equal(fileDone.state, "JOB_STATE_SUCCEEDED");
  assert.equal(fileDone.dest.inlinedResponses, undefined);
  const fileLines = (await download(fileDone.dest.fileName)).toString().trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(fileLines.map((l) => l.key), ["file-a", "file-b"]);

  const failing = await ai.batches.create({
    model,
    src: [{ contents: [{ parts: [{ text: "this one breaks [[fail]]" }] }] }],
    config: { webhookConfig: { uris: [hook], userMetadata: meta } },
  });
  const failed = await poll(() => ai.batches.get({ name: failing.name }), terminal, "the failing batch");
  assert.equal(failed.state, "JOB_STATE_FAILED");

  const slow = await ai.batches.create({
    model,
    src: [{ contents: [{ parts: [{ text: "never finishes [[expire]]" }] }] }],
    config: { webhookConfig: { uris: [hook], userMetadata: meta } },
  });
  await poll(() => ai.batches.get({ name: slow.name }), (b) => b.state === "JOB_STATE_RUNNING", "the slow batch to run");
  await ai.batches.cancel({ name: slow.name });
  const cancelled = await ai.batches.get({ name: slow.name });
  assert.equal(cancelled.state, "JOB_STATE_CANCELLED");

  await ai.batches.delete({ name: failed.name });
  await expectStatus(ai.batches.get({ name: failed.name }), 404);
  return { succeeded: job.name, failed: failing.name, cancelled: slow.name, output: done.dest.fileName, file_batch: fromFile.name };
}

async function files() {
  const text = "line one\nline two\n";
  const f = await ai.files.upload({ file: new Blob([text], { type: "text/plain" }), config: { displayName: "notes" } });
  assert.match(f.name, /^files\/[a-z0-9]+$/);
  assert.equal(f.displayName, "notes");
  assert.equal(f.mimeType, "text/plain");
  assert.equal(f.sizeBytes, String(text.length));
  assert.equal(f.state, "ACTIVE");
  const got = await ai.files.get({ name: f.name });
  assert.equal(got.sha256Hash, f.sha256Hash);
  assert.equal((await download(f.name)).toString(), text);

  // A file path larger than one 8 MiB chunk: several upload commands.
  const big = Buffer.alloc(9 * 1024 * 1024 + 7, 7);
  const path = join(tmp, "big.bin");
  writeFileSync(path, big);
  const bf = await ai.files.upload({ file: path, config: { mimeType: "application/octet-stream", name: "big-one" } });
  assert.equal(bf.name, "files/big-one");
  assert.equal(bf.sizeBytes, String(big.length));
  assert.ok((await download(bf.name)).equals(big), "big file round-trips");

  const names = [];
  for await (const x of await ai.files.list({ config: { pageSize: 1 } })) names.push(x.name);
  assert.ok(names.includes(f.name) && names.includes(bf.name), `list: ${names}`);
  await ai.files.delete({ name: f.name });
  await expectStatus(ai.files.get({ name: f.name }), 404);
  return { file: bf.name };
}

async function interactions() {
  const tools = [{
    type: "function",
    name: "get_weather",
    description: "Current weather of a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  }];
  const webhook_config = { uris: [hook], user_metadata: { conversation: "c-1" } };
  const first = await ai.interactions.create({
    model, input: "What is the weather in Paris? [[requires_action]]", tools, background: true, webhook_config,
  });
  assert.equal(first.status, "in_progress");
  assert.deepEqual(first.webhook_config, webhook_config);
  const waiting = await poll(() => ai.interactions.get(first.id), (i) => i.status !== "in_progress", "requires_action");
  assert.equal(waiting.status, "requires_action");
  const call = waiting.steps.find((s) => s.type === "function_call");
  assert.equal(call.name, "get_weather");
  assert.ok(call.id, "call id");

  const second = await ai.interactions.create({
    model,
    previous_interaction_id: first.id,
    input: [{ type: "function_result", call_id: call.id, name: "get_weather", result: { temperature: "21C" } }],
    background: true,
    webhook_config,
  });
  assert.equal(second.previous_interaction_id, first.id);
  const done = await poll(() => ai.interactions.get(second.id), (i) => i.status !== "in_progress", "completed");
  assert.equal(done.status, "completed");
  assert.match(done.output_text, /get_weather returned \{"temperature":"21C"\}/);

  // webhook_config needs background: true.
  await expectStatus(ai.interactions.create({ model, input: "hi", webhook_config }), 400);
  // A foreground interaction answers at once.
  const fg = await ai.interactions.create({ model, input: "hello there" });
  assert.equal(fg.status, "completed");
  assert.match(fg.output_text, /hello there/);

  const slow = await ai.interactions.create({ model, input: "forever [[expire]]", background: true, webhook_config });
  const cancelled = await ai.interactions.cancel(slow.id);
  assert.equal(cancelled.status, "cancelled");
  await ai.interactions.delete(fg.id);
  await expectStatus(ai.interactions.get(fg.id), 404);

  // The SDK shows the server's message for a 400 and a 404 on every call.
  const shows = async (promise, status, message) => {
    const err = await expectStatus(promise, status);
    assert.ok(String(err.message).includes(message), `${err.message} lacks the server's message ${message}`);
  };
  await shows(ai.interactions.create({ model, input: "hi", previous_interaction_id: "nope" }), 400,
    "is not an interaction of this project");
  await shows(ai.interactions.get("nope"), 404, "Interaction nope was not found.");
  await shows(ai.interactions.cancel("nope"), 404, "Interaction nope was not found.");
  await shows(ai.interactions.delete("nope"), 404, "Interaction nope was not found.");
  return { first: first.id, second: second.id, cancelled: slow.id };
}

const mode = process.argv[2];
const result = await { batches, files, interactions }[mode]();
console.log("RESULT " + JSON.stringify(result));
