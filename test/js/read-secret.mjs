// The application side of TestManagedIdentity_AgentEndToEnd's JavaScript check: a
// ManagedIdentityCredential built with no options, so only IDENTITY_ENDPOINT and IDENTITY_HEADER
// in the environment say where tokens come from. Prints SECRET=<value> or ERROR=<message>.
//
//   node --require ./localhost.cjs read-secret.mjs <vault URL> <CA file> <secret name>

import fs from "node:fs";
import { ManagedIdentityCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";

const [vaultURL, caFile, name] = process.argv.slice(2);
const client = new SecretClient(vaultURL, new ManagedIdentityCredential(), {
  tlsOptions: { ca: fs.readFileSync(caFile) },
  retryOptions: { maxRetries: 0 },
});
try {
  const s = await client.getSecret(name);
  console.log("SECRET=" + s.value);
} catch (e) {
  console.log("ERROR=" + String(e.message).replace(/\n/g, " "));
}
