// The JavaScript SDK conformance suite: @azure/keyvault-secrets' SecretClient drives every
// data-plane operation Strongroom serves, through one @azure/identity credential per run.
// test/js_test.go starts the server, makes the vaults and principals, and runs
//
//   node --require ./localhost.cjs suite.mjs --credential <kind> --vault-url URL \
//        --denied-vault-url URL --protected-vault-url URL --prefix P [--common]
//
// where <kind> is one of
//   secret            ClientSecretCredential from SR_TENANT_ID, SR_CLIENT_ID, SR_CLIENT_SECRET and
//                     SR_AUTHORITY_HOST, trusting --ca-file through tlsOptions (no environment
//                     variable of the SDK's own);
//   managed-identity  ManagedIdentityCredential() with nothing but IDENTITY_ENDPOINT and
//                     IDENTITY_HEADER (the identity agent) and NODE_EXTRA_CA_CERTS; the identity is
//                     also selected by SR_MI_CLIENT_ID, SR_MI_RESOURCE_ID and SR_MI_OBJECT_ID
//                     when set, and found by DefaultAzureCredential();
//   default           DefaultAzureCredential() configured by AZURE_* and NODE_EXTRA_CA_CERTS only.
//
// Every operation prints one JSON line {"credential", "operation", "ok", "error"}; the exit code
// is 1 when any failed. --common adds the checks that do not depend on the credential (bad and
// wrong-audience tokens); their lines carry an empty credential, as do those of
// --throttle-vault-url URL, which runs only the throttling checks against a vault whose server
// allows a handful of requests per 10 s.
//
// The SecretClient's challenge-resource verification stays on: the server's challenge names a
// resource the SDK accepts, and a run that needed disableChallengeResourceVerification would be
// a failure.

import fs from "node:fs";
import { parseArgs } from "node:util";
import { ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";

const { values: args } = parseArgs({
  options: {
    credential: { type: "string" },
    "vault-url": { type: "string" },
    "denied-vault-url": { type: "string" },
    "protected-vault-url": { type: "string" },
    "throttle-vault-url": { type: "string" },
    "ca-file": { type: "string" },
    prefix: { type: "string", default: "js" },
    common: { type: "boolean", default: false },
  },
});

let failed = 0;

function report(credential, operation, error) {
  if (error !== undefined) failed++;
  const line = { credential, operation, ok: error === undefined };
  if (error !== undefined) line.error = describe(error);
  console.log(JSON.stringify(line));
}

function describe(err) {
  if (err === null || typeof err !== "object") return String(err);
  const status = err.statusCode !== undefined ? ` (HTTP ${err.statusCode} ${err.code ?? ""})` : "";
  return `${err.name ?? "Error"}: ${String(err.message).replace(/\s+/g, " ").slice(0, 600)}${status}`;
}

class Check extends Error {}

function check(cond, what) {
  if (!cond) throw new Check(what);
}

function sameInstant(a, b) {
  return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
}

// expectError runs fn and checks that it failed with Key Vault's status and error code, as the
// SDK surfaces them (RestError.statusCode and .code).
async function expectError(fn, status, code, message) {
  let result;
  try {
    result = await fn();
  } catch (err) {
    check(err.statusCode === status && err.code === code,
      `got ${err.name} HTTP ${err.statusCode} code ${err.code} (${err.message}), want HTTP ${status} ${code}`);
    if (message) check(message.test(err.message), `message ${JSON.stringify(err.message)} does not match ${message}`);
    return;
  }
  throw new Check(`succeeded (${JSON.stringify(result)?.slice(0, 200)}), want HTTP ${status} ${code}`);
}

// wire records the list requests the SDK sends and the nextLink each answer carries, so the
// paging checks can tell that every page after the first came from the server's nextLink.
const wire = [];
const recorder = {
  name: "strongroomListRecorder",
  async sendRequest(request, next) {
    const response = await next(request);
    // A 401 is the SDK's unauthenticated first request, answered by the challenge, not a page.
    if (request.method === "GET" && response.status !== 401 && /\/(secrets|deletedsecrets)(\/[^/?]+\/versions)?\?/.test(request.url)) {
      let nextLink;
      try {
        nextLink = JSON.parse(response.bodyAsText ?? "{}").nextLink ?? undefined;
      } catch {
        // not JSON: the paging check reports the page count instead
      }
      wire.push({ url: request.url, status: response.status, nextLink });
    }
    return response;
  },
};

// pages walks a paged iterator page by page and returns the pages (arrays). It checks that each
// page holds at most maxPageSize items, that the first request asked for maxresults, and that
// every later request was exactly the previous answer's nextLink (the SDK follows it as given).
async function pages(iterable, maxPageSize) {
  const start = wire.length;
  const out = [];
  for await (const page of iterable.byPage({ maxPageSize })) {
    check(page.length <= maxPageSize, `a page of ${page.length} items, maxPageSize ${maxPageSize}`);
    out.push([...page]);
  }
  const sent = wire.slice(start);
  check(sent.length === out.length, `${sent.length} list requests for ${out.length} pages`);
  check(new URL(sent[0].url).searchParams.get("maxresults") === String(maxPageSize), `first request ${sent[0].url}`);
  sent.forEach((r, i) => {
    if (i > 0) check(r.url === sent[i - 1].nextLink, `request ${i + 1} ${r.url} is not the nextLink ${sent[i - 1].nextLink}`);
  });
  check(sent.at(-1).nextLink === undefined, `the last page has a nextLink ${sent.at(-1).nextLink}`);
  return out;
}

// Pollers ask the server every 2 s by default; this server completes deletes and recoveries at
// once, so a short interval keeps the suite fast without changing what is asked.
const poll = { intervalInMs: 50 };

function makeCredential(kind) {
  switch (kind) {
    case "secret":
      return new ClientSecretCredential(process.env.SR_TENANT_ID, process.env.SR_CLIENT_ID, process.env.SR_CLIENT_SECRET, {
        authorityHost: process.env.SR_AUTHORITY_HOST,
        disableInstanceDiscovery: true, // or MSAL asks the public cloud whether the authority is known
        tlsOptions: { ca: fs.readFileSync(args["ca-file"]) },
      });
    case "managed-identity":
      return new ManagedIdentityCredential();
    case "default":
      return new DefaultAzureCredential();
    default:
      throw new Error(`unknown --credential ${kind}`);
  }
}

function clientOptions(kind) {
  // No retries: a transient 5xx or 429 is a finding here, not something to ride out.
  const o = { retryOptions: { maxRetries: 0 }, additionalPolicies: [{ policy: recorder, position: "perCall" }] };
  if (kind === "secret") o.tlsOptions = { ca: fs.readFileSync(args["ca-file"]) };
  return o;
}

const credentialNames = {
  secret: "ClientSecretCredential",
  "managed-identity": "ManagedIdentityCredential",
  default: "DefaultAzureCredential",
};

async function run() {
  const kind = args.credential;
  const name = credentialNames[kind] ?? kind;
  const op = async (operation, fn) => {
    try {
      await fn();
      report(name, operation);
    } catch (err) {
      report(name, operation, err);
    }
  };
  let cred;
  try {
    cred = makeCredential(kind);
  } catch (err) {
    report(name, "construct credential", err);
    return;
  }
  const kv = new SecretClient(args["vault-url"], cred, clientOptions(kind));
  const base = args["vault-url"].replace(/\/$/, ""); // ids carry no trailing slash
  const p = args.prefix;

  // Writes with every attribute the SDK sends, then reads them back.
  const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000 - 3600_000);
  const expiresOn = new Date(Math.floor(Date.now() / 1000) * 1000 + 30 * 86400_000);
  const versions = [];
  await op("setSecret (contentType, tags, enabled, notBefore, expiresOn)", async () => {
    const s = await kv.setSecret("alpha", "first-value", {
      contentType: "text/plain", tags: { env: "dev", team: "js" }, enabled: true, notBefore, expiresOn,
    });
    const pr = s.properties;
    check(s.value === "first-value" && s.name === "alpha", `set returned ${s.name}=${s.value}`);
    check(/^[0-9a-f]{32}$/.test(pr.version ?? ""), `version ${pr.version}`);
    check(pr.id === `${base}/secrets/alpha/${pr.version}`, `id ${pr.id}`);
    check(pr.contentType === "text/plain" && pr.tags?.env === "dev" && pr.tags?.team === "js", `contentType/tags ${pr.contentType} ${JSON.stringify(pr.tags)}`);
    check(pr.enabled === true && sameInstant(pr.notBefore, notBefore) && sameInstant(pr.expiresOn, expiresOn),
      `enabled ${pr.enabled} nbf ${pr.notBefore?.toISOString()} exp ${pr.expiresOn?.toISOString()}`);
    check(pr.recoveryLevel === "Recoverable+Purgeable" && pr.recoverableDays === 90, `recovery ${pr.recoveryLevel}/${pr.recoverableDays}`);
    check(pr.createdOn instanceof Date && pr.updatedOn instanceof Date, "no created/updated dates");
    versions.push(pr.version);
  });
  await op("setSecret (new version)", async () => {
    for (const v of ["second", "third", "fourth", "fifth"]) {
      const s = await kv.setSecret("alpha", v);
      check(s.properties.version && !versions.includes(s.properties.version), `version ${s.properties.version} not new`);
      check(s.properties.contentType === undefined && s.properties.tags === undefined, "a new version inherited attributes");
      versions.push(s.properties.version);
    }
  });
  await op("getSecret (latest)", async () => {
    const s = await kv.getSecret("ALPHA"); // names are case-insensitive
    check(s.value === "fifth" && s.properties.version === versions[4], `latest ${s.properties.version}=${s.value}`);
    check(s.name === "alpha", `name ${s.name}`);
  });
  await op("getSecret (by version)", async () => {
    const s = await kv.getSecret("alpha", { version: versions[0] });
    const pr = s.properties;
    check(s.value === "first-value" && pr.contentType === "text/plain" && pr.tags?.env === "dev", `v1 ${s.value} ${pr.contentType}`);
    check(sameInstant(pr.notBefore, notBefore) && sameInstant(pr.expiresOn, expiresOn), "v1 dates");
  });
  // Key Vault serves a secret's value outside its nbf/exp window (only its use is advisory).
  await op("getSecret (not yet valid, expired)", async () => {
    const later = new Date(Date.now() + 86400_000);
    const earlier = new Date(Date.now() - 86400_000);
    await kv.setSecret("window-future", "soon", { notBefore: later });
    await kv.setSecret("window-past", "old", { expiresOn: earlier });
    check((await kv.getSecret("window-future")).value === "soon", "not-yet-valid secret");
    check((await kv.getSecret("window-past")).value === "old", "expired secret");
  });
  await op("setSecret, getSecret (non-ASCII and JSON-special characters)", async () => {
    const value = 'pässwörd 🔑 "quoted" \\ back\nslash\t<tag>&amp; \u0000 end';
    const s = await kv.setSecret("unicode", value, { tags: { "wörd": "🔑 value" }, contentType: "text/plain; charset=utf-8" });
    check(s.value === value, "set echo");
    const got = await kv.getSecret("unicode");
    check(got.value === value && got.properties.tags?.["wörd"] === "🔑 value", `read back ${JSON.stringify(got.value)}`);
  });
  // Key Vault keeps dates to the second; the SDK sends them as Unix seconds.
  await op("setSecret (dates with milliseconds)", async () => {
    const exp = new Date(Date.now() + 86400_000);
    const s = await kv.setSecret("millis", "x", { expiresOn: exp });
    check(s.properties.expiresOn.getTime() === Math.floor(exp.getTime() / 1000) * 1000,
      `sent ${exp.toISOString()}, got ${s.properties.expiresOn?.toISOString()}`);
  });
  await op("setSecret (enabled: false)", async () => {
    const s = await kv.setSecret("dormant", "zzz", { enabled: false });
    check(s.properties.enabled === false, `enabled ${s.properties.enabled}`);
  });
  await op("error 403 Forbidden (getSecret of a disabled secret)", () =>
    expectError(() => kv.getSecret("dormant"), 403, "Forbidden", /disabled/));

  // Paging: 7 more names make 13 in all, listed two at a time over seven pages.
  const names = ["alpha", "window-future", "window-past", "unicode", "millis", "dormant"];
  await op("listPropertiesOfSecrets (byPage maxPageSize 2)", async () => {
    for (let i = 0; i < 7; i++) {
      const n = `page-${String(i).padStart(2, "0")}`;
      await kv.setSecret(n, `v${i}`);
      names.push(n);
    }
    const got = await pages(kv.listPropertiesOfSecrets(), 2);
    const listed = got.flat();
    check(got.length === Math.ceil(names.length / 2), `${got.length} pages for ${names.length} names`);
    check(listed.length === names.length, `listed ${listed.length}, want ${names.length}`);
    check(new Set(listed.map((s) => s.name)).size === names.length && names.every((n) => listed.some((s) => s.name === n)),
      `names ${listed.map((s) => s.name).join(",")}`);
    check(listed.every((s) => s.version === undefined && s.id === `${base}/secrets/${s.name}`),
      "a listed item carries a version");
    const alpha = listed.find((s) => s.name === "alpha");
    check(alpha.contentType === undefined && alpha.enabled === true, "alpha's list item is not its latest version");
    const dormant = listed.find((s) => s.name === "dormant");
    check(dormant.enabled === false, "disabled secret listed as enabled");
  });
  await op("listPropertiesOfSecrets (for await)", async () => {
    let n = 0;
    for await (const s of kv.listPropertiesOfSecrets()) {
      check(s.name, "item without a name");
      n++;
    }
    check(n === names.length, `iterated ${n}, want ${names.length}`);
  });
  await op("listPropertiesOfSecretVersions (byPage maxPageSize 2)", async () => {
    const got = await pages(kv.listPropertiesOfSecretVersions("alpha"), 2);
    const listed = got.flat();
    check(got.length === 3 && listed.length === 5, `${listed.length} versions over ${got.length} pages, want 5 over 3`);
    check([...versions].sort().join() === listed.map((s) => s.version).sort().join(), "versions differ");
    const v1 = listed.find((s) => s.version === versions[0]);
    check(v1.contentType === "text/plain" && sameInstant(v1.expiresOn, expiresOn), "v1's listed attributes");
  });
  await op("error 400 BadParameter (maxPageSize 26)", () =>
    expectError(async () => {
      for await (const _ of kv.listPropertiesOfSecrets().byPage({ maxPageSize: 26 })) {
        // the first page is refused
      }
    }, 400, "BadParameter"));

  await op("updateSecretProperties", async () => {
    const exp = new Date(Math.floor(Date.now() / 1000) * 1000 + 2 * 86400_000);
    const pr = await kv.updateSecretProperties("alpha", versions[0], {
      enabled: false, expiresOn: exp, contentType: "application/x-pem", tags: { stage: "two" },
    });
    check(pr.version === versions[0] && pr.enabled === false && sameInstant(pr.expiresOn, exp), `update ${JSON.stringify(pr)}`);
    check(pr.contentType === "application/x-pem" && pr.tags?.stage === "two" && pr.tags?.env === undefined, "tags are replaced");
    check(sameInstant(pr.notBefore, notBefore), "an attribute not sent was changed");
    await expectError(() => kv.getSecret("alpha", { version: versions[0] }), 403, "Forbidden");
    check((await kv.getSecret("alpha")).value === "fifth", "other versions stay readable");
    const back = await kv.updateSecretProperties("alpha", versions[0], { enabled: true });
    check(back.enabled === true && back.contentType === "application/x-pem", "re-enable");
    check((await kv.getSecret("alpha", { version: versions[0] })).value === "first-value", "re-enabled value");
    // An empty version names the latest one, as in Key Vault's PATCH /secrets/{name}/.
    const latest = await kv.updateSecretProperties("alpha", "", { tags: { latest: "yes" } });
    check(latest.version === versions[4] && latest.tags?.latest === "yes", `latest update ${latest.version}`);
  });

  // Soft delete, recovery and purge.
  await kv.setSecret("gone", "bye").catch(() => {});
  await op("beginDeleteSecret (poller)", async () => {
    const poller = await kv.beginDeleteSecret("gone", poll);
    const d = await poller.pollUntilDone();
    check(poller.isDone(), "poller not done");
    check(d.name === "gone" && d.recoveryId === `${base}/deletedsecrets/gone`, `recoveryId ${d.recoveryId}`);
    check(d.deletedOn instanceof Date && d.scheduledPurgeDate instanceof Date &&
      d.scheduledPurgeDate.getTime() - d.deletedOn.getTime() === 90 * 86400_000, "deletedOn/scheduledPurgeDate");
    check(d.value === undefined, "a deleted secret's value was returned");
  });
  await op("getDeletedSecret", async () => {
    const d = await kv.getDeletedSecret("gone");
    check(d.name === "gone" && d.recoveryId?.endsWith("/deletedsecrets/gone") && d.properties.recoveryLevel === "Recoverable+Purgeable",
      `deleted ${JSON.stringify(d)}`);
  });
  await op("error 404 SecretNotFound (getSecret of a deleted secret)", () =>
    expectError(() => kv.getSecret("gone"), 404, "SecretNotFound"));
  await op("error 409 Conflict (setSecret of a deleted, unpurged name)", () =>
    expectError(() => kv.setSecret("gone", "again"), 409, "Conflict", /deleted but recoverable/));
  const deleted = ["gone"];
  await op("listDeletedSecrets (byPage maxPageSize 2)", async () => {
    for (const n of ["page-00", "page-01", "page-02", "page-03"]) {
      await (await kv.beginDeleteSecret(n, poll)).pollUntilDone();
      deleted.push(n);
    }
    const got = await pages(kv.listDeletedSecrets(), 2);
    const listed = got.flat();
    check(got.length === 3 && listed.length === deleted.length, `${listed.length} deleted over ${got.length} pages, want ${deleted.length} over 3`);
    check(deleted.every((n) => listed.some((s) => s.name === n && s.recoveryId?.endsWith(`/deletedsecrets/${n}`))), "names/recoveryIds");
  });
  await op("beginRecoverDeletedSecret (poller)", async () => {
    const poller = await kv.beginRecoverDeletedSecret("gone", poll);
    const s = await poller.pollUntilDone();
    check(s.name === "gone", `recovered ${JSON.stringify(s)}`);
    check((await kv.getSecret("gone")).value === "bye", "value after recovery");
  });
  await op("error 404 SecretNotFound (purgeDeletedSecret of a live secret)", () =>
    expectError(() => kv.purgeDeletedSecret("gone"), 404, "SecretNotFound"));
  await op("purgeDeletedSecret", async () => {
    await (await kv.beginDeleteSecret("gone", poll)).pollUntilDone();
    await kv.purgeDeletedSecret("gone");
    await expectError(() => kv.getDeletedSecret("gone"), 404, "SecretNotFound");
    check((await kv.setSecret("gone", "reborn")).value === "reborn", "name reusable after purge");
  });

  // Backup and restore.
  let backup;
  await op("backupSecret", async () => {
    backup = await kv.backupSecret("alpha");
    check(backup instanceof Uint8Array && backup.length > 0, `backup ${typeof backup}`);
    check(!Buffer.from(backup).toString("latin1").includes("first-value"), "the backup holds a value in plaintext");
  });
  await op("error 409 Conflict (restoreSecretBackup over a live secret)", () =>
    expectError(() => kv.restoreSecretBackup(backup), 409, "Conflict"));
  await op("error 400 BadParameter (restoreSecretBackup of a damaged blob)", () =>
    expectError(() => kv.restoreSecretBackup(new Uint8Array(Buffer.from("not a backup blob"))), 400, "BadParameter"));
  await op("restoreSecretBackup", async () => {
    await (await kv.beginDeleteSecret("alpha", poll)).pollUntilDone();
    await kv.purgeDeletedSecret("alpha");
    const pr = await kv.restoreSecretBackup(backup);
    check(pr.name === "alpha" && pr.version === versions[4], `restored ${JSON.stringify(pr)}`);
    check((await kv.getSecret("alpha")).value === "fifth", "latest after restore");
    const v1 = await kv.getSecret("alpha", { version: versions[0] });
    check(v1.value === "first-value" && v1.properties.contentType === "application/x-pem", "v1 after restore");
  });

  // The other errors the SDK can reach.
  await op("error 404 SecretNotFound (getSecret)", () =>
    expectError(() => kv.getSecret("missing"), 404, "SecretNotFound"));
  await op("error 404 SecretNotFound (getSecret of an unknown version)", () =>
    expectError(() => kv.getSecret("alpha", { version: "0".repeat(32) }), 404, "SecretNotFound"));
  await op("error 404 SecretNotFound (updateSecretProperties)", () =>
    expectError(() => kv.updateSecretProperties("missing", "", { contentType: "x" }), 404, "SecretNotFound"));
  await op("error 404 SecretNotFound (beginDeleteSecret)", () =>
    expectError(() => kv.beginDeleteSecret("missing", poll), 404, "SecretNotFound"));
  await op("error 404 SecretNotFound (getDeletedSecret)", () =>
    expectError(() => kv.getDeletedSecret("alpha"), 404, "SecretNotFound"));
  await op("error 404 SecretNotFound (beginRecoverDeletedSecret)", () =>
    expectError(() => kv.beginRecoverDeletedSecret("missing", poll), 404, "SecretNotFound"));
  await op("error 404 SecretNotFound (backupSecret)", () =>
    expectError(() => kv.backupSecret("missing"), 404, "SecretNotFound"));
  const tooManyTags = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`t${i}`, "v"]));
  for (const [what, fn] of [
    ["a bad name", () => kv.setSecret("bad_name", "x")],
    ["a name too long", () => kv.setSecret("n".repeat(128), "x")],
    ["a value too large", () => kv.setSecret("alpha", "a".repeat(25 * 1024 + 1))],
    ["16 tags", () => kv.setSecret("alpha", "x", { tags: tooManyTags })],
    ["a content type too long", () => kv.setSecret("alpha", "x", { contentType: "c".repeat(256) })],
  ]) {
    await op(`error 400 BadParameter (setSecret with ${what})`, () => expectError(fn, 400, "BadParameter"));
  }
  await op("rejected writes leave no version behind", async () => {
    let n = 0;
    for await (const _ of kv.listPropertiesOfSecretVersions("alpha")) n++;
    check(n === 5, `alpha has ${n} versions, want 5`);
  });
  if (args["denied-vault-url"]) {
    const denied = new SecretClient(args["denied-vault-url"], cred, clientOptions(kind));
    await op("error 403 Forbidden (no role on the vault)", () =>
      expectError(() => denied.getSecret("present"), 403, "Forbidden"));
  }
  if (args["protected-vault-url"]) {
    // The protected vault also carries Azure Policy's "secrets should have an expiration date"
    // with the Deny effect.
    const pp = new SecretClient(args["protected-vault-url"], cred, clientOptions(kind));
    await op("error 403 Forbidden (setSecret denied by policy)", () =>
      expectError(() => pp.setSecret(`${p}-no-expiry`, "x"), 403, "Forbidden", /polic/i));
    await op("error 403 Forbidden (purgeDeletedSecret with purge protection)", async () => {
      await pp.setSecret(`${p}-keep`, "x", { expiresOn: new Date(Date.now() + 86400_000) });
      const d = await (await pp.beginDeleteSecret(`${p}-keep`, poll)).pollUntilDone();
      check(d.properties.recoveryLevel === "CustomizedRecoverable" && d.properties.recoverableDays === 7,
        `recovery ${d.properties.recoveryLevel}/${d.properties.recoverableDays}`);
      await expectError(() => pp.purgeDeletedSecret(`${p}-keep`), 403, "Forbidden", /purge protection/);
    });
  }
  if (kind === "managed-identity") {
    // The identity named each way the App Service protocol allows (client_id, mi_res_id,
    // object_id), and DefaultAzureCredential finding the agent through the same two variables.
    for (const [what, make] of [
      ["clientId", (v) => new ManagedIdentityCredential({ clientId: v })],
      ["resourceId", (v) => new ManagedIdentityCredential({ resourceId: v })],
      ["objectId", (v) => new ManagedIdentityCredential({ objectId: v })],
    ]) {
      const v = process.env[`SR_MI_${what.replace("Id", "_ID").toUpperCase()}`];
      if (!v) continue;
      await op(`getSecret (${what} selected)`, async () => {
        const byId = new SecretClient(args["vault-url"], make(v), clientOptions(kind));
        check((await byId.getSecret("alpha")).value === "fifth", "value");
      });
    }
    await op("getSecret (DefaultAzureCredential finds the managed identity)", async () => {
      const viaDefault = new SecretClient(args["vault-url"], new DefaultAzureCredential(), clientOptions(kind));
      check((await viaDefault.getSecret("alpha")).value === "fifth", "value");
    });
  }

  if (args.common) await common(cred, kind);
}

// common: what the server answers tokens it must refuse, whatever the credential.
async function common(cred, kind) {
  const op = async (operation, fn) => {
    try {
      await fn();
      report("", operation);
    } catch (err) {
      report("", operation, err);
    }
  };
  const staticToken = (token) => ({
    getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3600_000 }),
  });
  // Every api-version the SDK can be told to speak.
  for (const serviceVersion of ["7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01"]) {
    await op(`serviceVersion ${serviceVersion}: setSecret, getSecret, listPropertiesOfSecrets`, async () => {
      const c = new SecretClient(args["vault-url"], cred, { ...clientOptions(kind), serviceVersion });
      const name = `api-${serviceVersion.replace(/\./g, "-")}`;
      const s = await c.setSecret(name, serviceVersion, { contentType: "text/plain" });
      const got = await c.getSecret(name, { version: s.properties.version });
      check(got.value === serviceVersion && got.properties.contentType === "text/plain", `read back ${got.value}`);
      let found = false;
      for await (const pr of c.listPropertiesOfSecrets()) found ||= pr.name === name;
      check(found, "not listed");
      const wanted = wire.filter((r) => r.url.includes("/secrets?")).at(-1);
      check(new URL(wanted.url).searchParams.get("api-version") === serviceVersion, `sent ${wanted.url}`);
    });
  }
  const forged = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwczovL3ZhdWx0LmF6dXJlLm5ldCJ9.c2ln";
  await op("error 401 Unauthorized (a forged token)", () =>
    expectError(() => new SecretClient(args["vault-url"], staticToken(forged), clientOptions(kind)).getSecret("alpha"), 401, "Unauthorized"));
  await op("error 401 Unauthorized (a token for another audience)", async () => {
    const arm = await cred.getToken("https://management.core.windows.net//.default");
    check(arm?.token, "no management token");
    await expectError(() => new SecretClient(args["vault-url"], staticToken(arm.token), clientOptions(kind)).getSecret("alpha"), 401, "Unauthorized");
  });
}

// throttle: a vault on a server with a tiny request budget. Without retries the SDK surfaces
// 429 Throttled; with its default retry policy it waits out Retry-After and succeeds.
async function throttle(cred, kind) {
  const op = async (operation, fn) => {
    try {
      await fn();
      report("", operation);
    } catch (err) {
      report("", operation, err);
    }
  };
  const url = args["throttle-vault-url"];
  const noRetry = new SecretClient(url, cred, clientOptions(kind));
  await op("error 429 Throttled (retries off)", async () => {
    for (let i = 0; i < 30; i++) {
      try {
        await noRetry.getSecret("missing");
      } catch (err) {
        if (err.statusCode === 404) continue;
        check(err.statusCode === 429 && err.code === "Throttled", `got HTTP ${err.statusCode} ${err.code}: ${err.message}`);
        const after = Number(err.response?.headers.get("retry-after"));
        check(after >= 1 && after <= 10, `Retry-After ${err.response?.headers.get("retry-after")}`);
        return;
      }
    }
    throw new Check("30 requests were never throttled");
  });
  await op("retry after 429 (the SDK waits Retry-After)", async () => {
    const attempts = [];
    const o = clientOptions(kind);
    delete o.retryOptions; // the SDK's defaults
    o.additionalPolicies.push({
      position: "perRetry",
      policy: {
        name: "strongroomAttempts",
        async sendRequest(request, next) {
          const response = await next(request);
          attempts.push({ status: response.status, at: Date.now() });
          return response;
        },
      },
    });
    const retrying = new SecretClient(url, cred, o);
    await expectError(() => retrying.getSecret("missing"), 404, "SecretNotFound");
    const first429 = attempts.findIndex((a) => a.status === 429);
    check(first429 >= 0 && attempts.at(-1).status === 404, `attempts ${attempts.map((a) => a.status).join(",")}`);
    check(attempts.at(-1).at - attempts[first429].at >= 900, "the retry did not wait for Retry-After");
  });
}

try {
  if (args["throttle-vault-url"]) {
    await throttle(makeCredential(args.credential), args.credential);
  } else {
    await run();
  }
} catch (err) {
  report(credentialNames[args.credential] ?? String(args.credential), "suite", err);
}
process.exit(failed > 0 ? 1 : 0);
