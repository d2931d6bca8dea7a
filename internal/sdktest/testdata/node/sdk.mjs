// Drives a real `longhook serve` (over HTTPS) with the official
// @google/genai SDK (pinned in package.json), unmodified, and verifies the
// dynamic webhooks it receives with npm jose against the server's JWKS.
//
// Usage: node sdk.mjs webhooks|batches|files|video|agent|errors
// Environment: LONGHOOK_BASE_URL (https://…), LONGHOOK_API_KEY,
// NODE_EXTRA_CA_CERTS (the server's certificate).
// Each SDK call it makes is reported as a line "INTEROP {op, call, outcome,
// note}" (the Go test records them for the interop matrix, docs/sdk.md);
// it exits non-zero on the first failed check. Run by internal/sdktest.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GoogleGenAI, GenerateVideosOperation } from "@google/genai";
import { createRemoteJWKSet, jwtVerify } from "jose";

const baseUrl = process.env.LONGHOOK_BASE_URL;
const apiKey = process.env.LONGHOOK_API_KEY;
assert.ok(baseUrl && apiKey, "LONGHOOK_BASE_URL and LONGHOOK_API_KEY are required");
const ai = new GoogleGenAI({ apiKey, apiVersion: "v1beta", httpOptions: { baseUrl } });
const model = "gemini-2.5-flash";
const tmp = mkdtempSync(join(tmpdir(), "longhook-sdktest-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

function interop(op, call, outcome, note = "") {
  console.log("INTEROP " + JSON.stringify({ op, call, outcome, note }));
}

async function poll(get, done, what) {
  const deadline = Date.now() + 60000;
  for (;;) {
    const v = await get();
    if (done(v)) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 20)); // polling interval
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

async function expectThrow(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail("expected an error");
}

// receiver is a webhook endpoint on 127.0.0.1: next(type) resolves with
// the next delivery of that type {headers, body, event}.
async function receiver() {
  const got = [];
  const waiting = [];
  const srv = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      got.push({ headers: req.headers, body, event: JSON.parse(body) });
      res.writeHead(204).end();
      waiting.splice(0).forEach((w) => w());
    });
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${srv.address().port}/hook`;
  const next = async (type) => {
    const deadline = Date.now() + 60000;
    for (;;) {
      const i = got.findIndex((d) => d.event.type === type);
      if (i >= 0) return got.splice(i, 1)[0];
      if (Date.now() > deadline) assert.fail(`no ${type} delivery within 60 s`);
      await new Promise((r) => {
        waiting.push(r);
        setTimeout(r, 1000);
      });
    }
  };
  return { url, next, close: () => srv.close() };
}

const jwks = createRemoteJWKSet(new URL(baseUrl + "/.well-known/jwks.json"));

// verify checks a dynamic delivery with jose: RS256 against the server's
// JWKS, issuer the server, audience the receiver's URI; body_sha256 binds
// the raw body and jti the webhook-id. It returns the claims.
async function verify(d, audience) {
  const { payload, protectedHeader } = await jwtVerify(d.headers["webhook-signature"], jwks, { issuer: baseUrl, audience });
  assert.equal(protectedHeader.alg, "RS256");
  assert.equal(payload.body_sha256, createHash("sha256").update(Buffer.from(d.body, "utf8")).digest("base64url"));
  assert.equal(payload.jti, d.headers["webhook-id"]);
  return payload;
}

async function download(file) {
  const path = join(tmp, `dl-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  await ai.files.download({ file, downloadPath: path });
  return readFileSync(path);
}

async function webhooks() {
  const hook = await receiver();
  const created = await ai.webhooks.create({ name: "js-sdk", uri: hook.url, subscribed_events: ["batch.succeeded", "batch.failed"] });
  assert.match(created.new_signing_secret, /^whsec_/);
  interop("webhooks.create", "ai.webhooks.create", "works");
  const page = await ai.webhooks.list({ page_size: 10 });
  assert.equal(page.webhooks.length, 1);
  assert.equal(page.webhooks[0].new_signing_secret, undefined);
  interop("webhooks.list", "ai.webhooks.list", "works", "one page per call: the result is {webhooks, next_page_token}, not an async iterable like batches.list");
  const got = await ai.webhooks.get(created.id);
  assert.equal(got.uri, hook.url);
  interop("webhooks.get", "ai.webhooks.get", "works");
  const upd = await ai.webhooks.update(created.id, { state: "disabled", update_mask: "state" });
  assert.equal(upd.state, "disabled");
  await ai.webhooks.update(created.id, { state: "enabled" });
  interop("webhooks.update", "ai.webhooks.update", "works");
  await ai.webhooks.ping(created.id);
  const ping = await hook.next("webhook.ping");
  assert.equal(ping.event.data.id, created.id);
  interop("webhooks.ping", "ai.webhooks.ping", "works");
  const rotated = await ai.webhooks.rotateSigningSecret(created.id, { revocation_behavior: "revoke_previous_secrets_after_h24" });
  assert.notEqual(rotated.secret, created.new_signing_secret);
  interop("webhooks.rotateSigningSecret", "ai.webhooks.rotateSigningSecret", "works");
  await ai.webhooks.delete(created.id);
  await expectStatus(ai.webhooks.get(created.id), 404);
  interop("webhooks.delete", "ai.webhooks.delete", "works");
  hook.close();
}

const terminal = (b) => !["JOB_STATE_PENDING", "JOB_STATE_RUNNING"].includes(b.state);

async function batches() {
  const hook = await receiver();
  const job = await ai.batches.create({
    model,
    src: [{ contents: [{ role: "user", parts: [{ text: "hello js" }] }], metadata: { key: "k1" } }],
    config: { displayName: "js", webhookConfig: { uris: [hook.url], userMetadata: { batch: "ok" } } },
  });
  interop("batches.create (inline, webhook_config)", "ai.batches.create({model, src: [...], config: {webhookConfig}})", "works");
  const done = await poll(() => ai.batches.get({ name: job.name }), terminal, "the batch");
  assert.equal(done.state, "JOB_STATE_SUCCEEDED");
  assert.equal(done.dest.inlinedResponses[0].metadata.key, "k1");
  interop("batches.get", "ai.batches.get", "works");
  const ok = await hook.next("batch.succeeded");
  assert.equal((await verify(ok, hook.url)).data.user_metadata.batch, "ok");

  // batch.failed with error {code, message}, verified with jose.
  const failing = await ai.batches.create({
    model,
    src: [{ contents: [{ role: "user", parts: [{ text: "this breaks [[fail]]" }] }] }],
    config: { webhookConfig: { uris: [hook.url], userMetadata: { batch: "bad" } } },
  });
  const d = await hook.next("batch.failed");
  const claims = await verify(d, hook.url);
  assert.equal(claims.sub, failing.name);
  assert.equal(d.event.data.id, failing.name);
  assert.equal(d.event.data.error.code, 13);
  assert.match(d.event.data.error.message, /Simulated failure/);
  assert.equal(d.event.data.error_code, "INTERNAL");
  assert.deepEqual(d.event.data.user_metadata, { batch: "bad" });
  interop("batch.failed (error) received", "ai.batches.create (a failing batch)", "works",
    "the dynamic URI gets batch.failed with error {code: 13, message} and error_code/error_message, JWT-verified with npm jose");
  const failed = await poll(() => ai.batches.get({ name: failing.name }), terminal, "the failed batch");
  assert.equal(failed.state, "JOB_STATE_FAILED");
  if (failed.error?.message) {
    interop("batch.failed (error) received", "ai.batches.get (the failed batch)", "works", "BatchJob.error carries the message");
  } else {
    interop("batch.failed (error) received", "ai.batches.get (the failed batch)", "differs",
      "JS SDK 3.1.0 maps no error from a Gemini API batch: BatchJob.error is undefined although the operation carries error {code, message}; the state is JOB_STATE_FAILED and the event has the error");
  }

  const names = [];
  for await (const b of await ai.batches.list({ config: { pageSize: 1 } })) names.push(b.name);
  assert.ok(names.includes(job.name) && names.includes(failing.name), "list pages through every batch");
  interop("batches.list", "ai.batches.list (async pager)", "works");

  const input = JSON.stringify({ key: "f1", request: { contents: [{ parts: [{ text: "from a file" }] }] } });
  const inFile = await ai.files.upload({ file: new Blob([input], { type: "application/jsonl" }), config: { mimeType: "application/jsonl" } });
  const fromFile = await ai.batches.create({ model, src: inFile.name });
  const fileDone = await poll(() => ai.batches.get({ name: fromFile.name }), terminal, "the file batch");
  assert.equal(fileDone.state, "JOB_STATE_SUCCEEDED");
  assert.match((await download(fileDone.dest.fileName)).toString(), /"key":"f1"/);
  interop("batches.create (file input)", "ai.batches.create({model, src: 'files/…'})", "works");

  const slow = await ai.batches.create({ model, src: [{ contents: [{ role: "user", parts: [{ text: "never [[expire]]" }] }] }] });
  await ai.batches.cancel({ name: slow.name });
  assert.equal((await ai.batches.get({ name: slow.name })).state, "JOB_STATE_CANCELLED");
  interop("batches.cancel", "ai.batches.cancel", "works");
  await ai.batches.delete({ name: slow.name });
  await expectStatus(ai.batches.get({ name: slow.name }), 404);
  interop("batches.delete", "ai.batches.delete", "works");

  const emb = await expectStatus(ai.batches.createEmbeddings({ model: "gemini-embedding-001",
    src: { inlinedRequests: { contents: [{ parts: [{ text: "embed me" }] }] } } }), 404);
  assert.match(String(emb.message), /NOT_FOUND|not found/i);
  interop("batches.createEmbeddings", "ai.batches.createEmbeddings", "unsupported",
    "longhook has no :asyncBatchEmbedContent; the SDK shows the 404 NOT_FOUND with the server's message");
  hook.close();
}

async function files() {
  const f = await ai.files.upload({ file: new Blob(["js bytes"], { type: "text/plain" }), config: { displayName: "js" } });
  assert.equal(f.state, "ACTIVE");
  interop("files.upload", "ai.files.upload", "works");
  const got = await ai.files.get({ name: f.name });
  assert.equal(got.displayName, "js");
  interop("files.get", "ai.files.get", "works");
  const names = [];
  for await (const x of await ai.files.list({ config: { pageSize: 1 } })) names.push(x.name);
  assert.ok(names.includes(f.name));
  interop("files.list", "ai.files.list (async pager)", "works");
  assert.equal((await download(f.name)).toString(), "js bytes");
  interop("files.download", "ai.files.download({file: 'files/…', downloadPath})", "works", "Node.js only (writes downloadPath)");
  await ai.files.delete({ name: f.name });
  await expectStatus(ai.files.get({ name: f.name }), 404);
  interop("files.delete", "ai.files.delete", "works");
  const reg = await expectThrow(ai.files.registerFiles({ uris: ["gs://bucket/a.txt"] }));
  assert.match(String(reg.message), /getRequestHeaders/);
  interop("files.registerFiles", "ai.files.registerFiles", "unsupported",
    "registers gs:// objects through a google-auth-library client passed as auth (the SDK throws without one, before sending anything); longhook has no Cloud Storage and no files:register");
}

async function video() {
  const hook = await receiver();
  // models.generateVideos: refused by the SDK on the Gemini API.
  const refused = await expectThrow(ai.models.generateVideos({ model: "veo-3.0-generate-001", source: { prompt: "a cat" } }));
  assert.match(refused.message, /only supported by the Gemini Enterprise Agent Platform/);
  interop("models.generateVideos (webhook_config)", "ai.models.generateVideos", "unsupported",
    "JS SDK 3.x throws on the Gemini API (\"only supported by the Gemini Enterprise Agent Platform (previously known as Vertex AI)\") before sending anything: use interactions with a Veo model");

  // An operation started over REST polls with getVideosOperation.
  const res = await fetch(`${baseUrl}/v1beta/models/veo-3.0-generate-001:predictLongRunning`, {
    method: "POST", headers: { "x-goog-api-key": apiKey, "content-type": "application/json" },
    body: JSON.stringify({ instances: [{ prompt: "a cat over REST" }] }),
  });
  assert.equal(res.status, 200);
  const op = Object.assign(new GenerateVideosOperation(), { name: (await res.json()).name });
  const polled = await poll(() => ai.operations.getVideosOperation({ operation: op }), (o) => o.done, "the video operation");
  const generated = polled.response.generatedVideos[0];
  interop("operations.getVideosOperation", "ai.operations.getVideosOperation({operation})", "differs",
    "needs a GenerateVideosOperation object; as generateVideos is refused, build one with the name of an operation started over REST (predictLongRunning)");
  assert.ok((await download(generated)).length > 0);
  interop("files.download (generated video)", "ai.files.download({file: generatedVideo})", "works", "an https:// video URI (the SDK extracts the file id only from https:// URIs)");

  // Veo through the Interactions API.
  const user_metadata = { shot: "js-interaction" };
  const created = await ai.interactions.create({ model: "veo-3.1-generate-preview", input: "a cat surfing at dawn",
    background: true, webhook_config: { uris: [hook.url], user_metadata } });
  assert.equal(created.status, "in_progress");
  assert.deepEqual(created.webhook_config, { uris: [hook.url], user_metadata });
  const done = await poll(() => ai.interactions.get(created.id), (i) => i.status !== "in_progress", "the video interaction");
  assert.equal(done.status, "completed");
  assert.equal(done.output_video.type, "video");
  assert.equal(done.output_video.mime_type, "video/mp4");
  assert.match(done.output_video.uri, /^https:\/\/.*\/files\/video[a-z0-9]+:download\?alt=media$/);
  const gen = await hook.next("video.generated");
  const claims = await verify(gen, hook.url);
  assert.equal(claims.sub, `interactions/${created.id}`);
  assert.equal(gen.event.data.id, created.id);
  assert.equal(gen.event.data.output_file_uri, done.output_video.uri);
  assert.deepEqual(gen.event.data.user_metadata, user_metadata);
  assert.deepEqual(claims.data.user_metadata, user_metadata);
  const completed = await hook.next("interaction.completed");
  await verify(completed, hook.url);
  assert.deepEqual(completed.event.data.output.content, [{ type: "video", uri: done.output_video.uri, mime_type: "video/mp4" }]);
  interop("interactions.create (video model) → video.generated", "ai.interactions.create({model: 'veo-…', background, webhook_config})", "works",
    "completes with output_video {type: video, uri, mime_type}; the dynamic URI gets video.generated (JWT, user_metadata), then interaction.completed; the real API's wire shape is unconfirmed");
  const bytes = await download(done.output_video);
  assert.ok(bytes.length > 0);
  interop("files.download (interaction output_video)", "ai.files.download({file: interaction.output_video})", "differs",
    "works when the URI is https:// (tFileName extracts the file id only from https:// URIs); over plain http pass 'files/' + the id from the URI");
  hook.close();
}

async function agent() {
  const hook = await receiver();
  const webhook_config = { uris: [hook.url], user_metadata: { study: "weather" } };
  const tools = [{ type: "function", name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } }];
  const agentName = "deep-research-pro-preview-12-2025";
  const first = await ai.interactions.create({ agent: agentName, input: "research the weather in Paris [[requires_action]]",
    tools, background: true, webhook_config });
  assert.equal(first.agent, agentName);
  const waiting = await poll(() => ai.interactions.get(first.id), (i) => i.status !== "in_progress", "requires_action");
  assert.equal(waiting.status, "requires_action");
  assert.ok(waiting.steps.some((s) => s.type === "thought"), "the agent's steps show as thoughts");
  const call = waiting.steps.find((s) => s.type === "function_call");
  assert.equal(call.name, "get_weather");
  const ra = await hook.next("interaction.requires_action");
  await verify(ra, hook.url);
  assert.equal(ra.event.data.required_action.function_calls[0].id, call.id);
  interop("interactions.create (agent) → requires_action", "ai.interactions.create({agent, background, tools, webhook_config})", "works",
    "thought steps while it runs, then a function_call step and interaction.requires_action");
  const second = await ai.interactions.create({ agent: agentName, previous_interaction_id: first.id, background: true, webhook_config,
    input: [{ type: "function_result", call_id: call.id, name: "get_weather", result: "sunny, 21C" }] });
  const done = await poll(() => ai.interactions.get(second.id), (i) => i.status !== "in_progress", "completed");
  assert.equal(done.status, "completed");
  assert.match(done.output_text, /sunny, 21C/);
  const completed = await hook.next("interaction.completed");
  const claims = await verify(completed, hook.url);
  assert.equal(completed.event.data.id, second.id);
  assert.match(completed.event.data.output.content[0].text, /sunny, 21C/);
  assert.deepEqual(claims.data.output, completed.event.data.output);
  interop("interactions.create (function result) → interaction.completed", "ai.interactions.create({previous_interaction_id, input: [{type: 'function_result', …}]})", "works",
    "interaction.completed carries output.content, JWT-verified with npm jose");
  interop("interactions.create (background, webhook_config)", "ai.interactions.create({…, background: true, webhook_config})", "works", "webhook_config is echoed on the interaction");
  interop("interactions.get", "ai.interactions.get", "works");

  const fg = await ai.interactions.create({ model, input: "hello there" });
  assert.equal(fg.status, "completed");
  assert.equal(fg.output_text, "Simulated response to: hello there");
  interop("interactions.create (model)", "ai.interactions.create({model, input})", "works");
  const slow = await ai.interactions.create({ model, input: "forever [[expire]]", background: true });
  assert.equal((await ai.interactions.cancel(slow.id)).status, "cancelled");
  interop("interactions.cancel", "ai.interactions.cancel", "works");
  await ai.interactions.delete(slow.id);
  await expectStatus(ai.interactions.get(slow.id), 404);
  interop("interactions.delete", "ai.interactions.delete", "works");
  const streamed = await expectStatus(ai.interactions.create({ model, input: "hi", stream: true }), 400);
  assert.match(String(streamed.message), /stream: true is not supported/);
  interop("interactions.create (stream)", "ai.interactions.create({…, stream: true})", "unsupported",
    "longhook does not stream interactions (400 INVALID_ARGUMENT, whose message the SDK shows): use background and poll, or a webhook_config");
  hook.close();
}

async function errors() {
  const shows = async (promise, status, message) => {
    const err = await expectStatus(promise, status);
    assert.ok(String(err.message).includes(message), `${err.message} lacks the server's message ${message}`);
  };
  await shows(ai.interactions.create({ model, input: "hi", previous_interaction_id: "nope" }), 400, "is not an interaction of this project");
  await shows(ai.interactions.create({ model: "veo-3", input: "hi", response_format: { type: "video", duration: "eight" } }), 400,
    "must be whole seconds");
  interop("interactions error 400 (message shown)", "ai.interactions.create", "works", "err.status and err.message hold the server's status and message");
  await shows(ai.interactions.get("nope"), 404, "Interaction nope was not found.");
  await shows(ai.interactions.cancel("nope"), 404, "Interaction nope was not found.");
  await shows(ai.interactions.delete("nope"), 404, "Interaction nope was not found.");
  interop("interactions error 404 (message shown)", "ai.interactions.get / cancel / delete", "works");
}

const mode = process.argv[2];
const run = { webhooks, batches, files, video, agent, errors }[mode];
assert.ok(run, `unknown mode ${mode}`);
await run();
console.log("DONE");
