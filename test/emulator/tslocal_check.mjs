// Asks the emulator through the npm package tslocal (a port of Tailscale's
// Go LocalAPI client whose zod schemas come from the Go types) and prints
// what it parsed as one JSON line; any schema mismatch throws.
// Usage: node tslocal_check.mjs <node_modules dir> <socket> <whois addr> <cert domain>
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modules, socketPath, addr, domain] = process.argv.slice(2);
const entry = createRequire(path.join(modules, "x.js")).resolve("tslocal");
const { Client } = await import(pathToFileURL(entry).href);
const client = new Client({ socketPath, useSocketOnly: true });
const big = (_k, v) => (typeof v === "bigint" ? v.toString() : v);
try {
  const st = await client.status();
  const who = await client.whoIs(addr);
  const pair = await client.certPair(domain);
  console.log(JSON.stringify({
    version: st.Version,
    backendState: st.BackendState,
    selfDNSName: st.Self && st.Self.DNSName,
    certDomains: st.CertDomains,
    peers: Object.keys(st.Peer || {}).length,
    login: who.UserProfile.LoginName,
    groups: who.UserProfile.Groups,
    nodeName: who.Node.Name,
    nodeID: who.Node.ID,
    capMap: who.CapMap,
    key: pair.key.toString("utf-8"),
    cert: pair.cert.toString("utf-8"),
  }, big));
} finally {
  client.destroy();
}
