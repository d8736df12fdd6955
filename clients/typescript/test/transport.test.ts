// Transport security of createMarketingClient: needs no service (a client
// connects only at its first call).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setImmediate } from "node:timers/promises";
import { createMarketingClient } from "../src/index.js";

/** The PlaintextTokenWarning messages emitted while `make` runs (warnings arrive on a later tick). */
async function plaintextWarnings(make: () => void): Promise<string[]> {
  const seen: string[] = [];
  const listen = (warning: Error) => {
    if (warning.name === "PlaintextTokenWarning") seen.push(warning.message);
  };
  process.on("warning", listen);
  try {
    make();
    await setImmediate();
    await setImmediate();
  } finally {
    process.off("warning", listen);
  }
  return seen;
}

describe("transport security", () => {
  it("refuses tls options with an http:// URL, which would ignore them", () => {
    assert.throws(
      () => createMarketingClient("http://marketing.internal:50051", { token: "t", tls: { ca: "pem" } }),
      /tls options need an https:\/\/ base URL/,
    );
    assert.throws(() => createMarketingClient("http://127.0.0.1:50051", { tls: {} }), /https:\/\//);
    createMarketingClient("https://marketing.internal:50051", { token: "t", tls: { ca: "pem" } });
  });

  it("warns once per origin when a token goes in clear to another host", async () => {
    const seen = await plaintextWarnings(() => {
      for (let i = 0; i < 3; i++) createMarketingClient("http://marketing.internal:50051", { token: "secret-token" });
      createMarketingClient("http://10.0.0.7:50051", { token: "secret-token" });
    });
    assert.equal(seen.length, 2, seen.join("\n"));
    assert.match(seen[0]!, /http:\/\/marketing\.internal:50051 without TLS/);
    assert.match(seen[1]!, /http:\/\/10\.0\.0\.7:50051 without TLS/);
    assert.ok(seen.every((message) => !message.includes("secret-token")));
  });

  it("does not warn for this host, over TLS, or without a token", async () => {
    const seen = await plaintextWarnings(() => {
      for (const url of ["http://127.0.0.1:50051", "http://127.8.9.1:1", "http://localhost:50051", "http://[::1]:50051"]) {
        createMarketingClient(url, { token: "t" });
      }
      createMarketingClient("https://remote.example:50051", { token: "t" });
      createMarketingClient("http://remote.example:50051");
    });
    assert.deepEqual(seen, []);
  });
});
