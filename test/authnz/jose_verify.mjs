// Verifies Tailscale-Jwt-Assertion tokens with the npm package jose against
// the server's JWK Set URL, issuer and audience, the way a Node backend would.
// Usage: node jose_verify.mjs <node_modules dir> <jwks url> <issuer> <audience> [now]
// Tokens on stdin, one a line; prints one JSON line per token:
// {"header": ..., "payload": ...} or {"error": code, "claim": ...}.
// now (seconds since the epoch) is the verifier's clock, default the real one.
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modules, jwksUrl, issuer, audience, now] = process.argv.slice(2);
const entry = createRequire(path.join(modules, "x.js")).resolve("jose");
const { createRemoteJWKSet, jwtVerify } = await import(pathToFileURL(entry).href);
const jwks = createRemoteJWKSet(new URL(jwksUrl));
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const tokens = Buffer.concat(chunks).toString("utf-8").split("\n").filter((t) => t);
const options = { issuer, audience, algorithms: ["ES256"] };
if (now) options.currentDate = new Date(Number(now) * 1000);
for (const token of tokens) {
  try {
    const { payload, protectedHeader } = await jwtVerify(token, jwks, options);
    console.log(JSON.stringify({ header: protectedHeader, payload }));
  } catch (e) {
    console.log(JSON.stringify({ error: e.code || String(e), claim: e.claim || null }));
  }
}
