// Calls a live service (MARKETING_URL); starts nothing. `make test` runs it
// against the service its pytest harness starts (tests/clients).
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { before, describe, it } from "node:test";
import {
  Code,
  ConnectError,
  ConsentType,
  EventSchema,
  createMarketingClient,
  errorReason,
  fieldViolations,
  type MarketingClient,
} from "../src/index.js";
import { quickstart } from "../examples/quickstart.js";

const url = process.env.MARKETING_URL;
const token = process.env.MARKETING_TOKEN;

function uniqueEmail(): string {
  return `ts.${randomUUID()}@example.com`;
}

function placedOrder(email: string, eventId: string) {
  return create(EventSchema, {
    eventId,
    email,
    occurTime: timestampNow(),
    payload: {
      case: "placedOrder",
      value: {
        order: {
          orderId: `o-${eventId}`,
          total: { currencyCode: "EUR", units: 19n, nanos: 990_000_000 },
          lines: [
            {
              productId: "sku-1",
              quantity: 1,
              unitPrice: { currencyCode: "EUR", units: 19n, nanos: 990_000_000 },
            },
          ],
        },
      },
    },
  });
}

describe("marketing.v1 from TypeScript", () => {
  let client: MarketingClient;

  before(() => {
    assert.ok(url, "set MARKETING_URL to a running service, e.g. http://127.0.0.1:50051");
    client = createMarketingClient(url, { token });
  });

  it("is refused without a token, naming why", async () => {
    const anonymous = createMarketingClient(url!);
    await assert.rejects(
      anonymous.getQueueStats({}),
      (error: unknown) =>
        ConnectError.from(error).code === Code.Unauthenticated && errorReason(error) === "MISSING_CREDENTIALS",
    );
  });

  it("upserts a contact, then reads it back by email", async () => {
    const email = uniqueEmail();
    const first = await client.upsertContact({ contact: { email, firstName: "Grace" } });
    assert.equal(first.created, true);
    assert.match(first.contact!.name, /^contacts\//);
    const again = await client.upsertContact({ contact: { email, lastName: "Hopper" } });
    assert.equal(again.created, false);
    const read = await client.getContact({ lookup: { case: "email", value: email } });
    assert.equal(read.contact!.firstName, "Grace");
    assert.equal(read.contact!.lastName, "Hopper");
  });

  it("records consent once per request id", async () => {
    const { contact } = await client.upsertContact({ contact: { email: uniqueEmail(), firstName: "Ada" } });
    const request = {
      parent: contact!.name,
      consent: { type: ConsentType.EMAIL, granted: true, source: "ts-test", consentTime: timestampNow() },
      requestId: randomUUID(),
    };
    const first = await client.recordConsent(request);
    const retried = await client.recordConsent(request);
    assert.equal(retried.consent!.name, first.consent!.name);
    const { consents } = await client.listConsents({ parent: contact!.name });
    assert.equal(consents.length, 1);
    assert.equal(consents[0].granted, true);
  });

  it("tracks an order; the same event id again is a duplicate", async () => {
    const email = uniqueEmail();
    const eventId = `ts-${randomUUID()}`;
    const first = await client.trackEvent({ event: placedOrder(email, eventId) });
    assert.deepEqual([first.eventId, first.duplicate], [eventId, false]);
    const again = await client.trackEvent({ event: placedOrder(email, eventId) });
    assert.equal(again.duplicate, true);
  });

  it("pages through contacts without repeats", async () => {
    for (let i = 0; i < 3; i++) {
      await client.upsertContact({ contact: { email: uniqueEmail(), firstName: "Ada" } });
    }
    const seen = new Set<string>();
    let pageToken = "";
    let pages = 0;
    do {
      const page = await client.listContacts({ pageSize: 2, pageToken });
      for (const c of page.contacts) {
        assert.ok(!seen.has(c.name), `${c.name} listed twice`);
        seen.add(c.name);
      }
      pageToken = page.nextPageToken;
      pages += 1;
    } while (pageToken !== "");
    assert.ok(seen.size >= 3);
    assert.ok(pages >= 2);
  });

  it("reads the field violations of INVALID_ARGUMENT", async () => {
    const bad = create(EventSchema, { email: "not-an-email", eventId: "has space" });
    const error = await client.trackEvents({ events: [placedOrder(uniqueEmail(), `ok-${randomUUID()}`), bad] }).then(
      () => assert.fail("a bad batch was accepted"),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(error.code, Code.InvalidArgument);
    const fields = new Map(fieldViolations(error).map((v) => [v.field, v.reason]));
    assert.equal(fields.get("events[1].email"), "INVALID_EMAIL");
    assert.equal(fields.get("events[1].event_id"), "INVALID_EVENT_ID");
    assert.equal(fields.get("events[1]"), "UNKNOWN_EVENT_TYPE");
    assert.equal(errorReason(error), "INVALID_FIELDS");
  });

  it("reads the field an ALREADY_EXISTS names", async () => {
    const userId = `user-${randomUUID()}`;
    await client.upsertContact({ contact: { email: uniqueEmail(), firstName: "Ada", userId } });
    const error = await client
      .upsertContact({ contact: { email: uniqueEmail(), firstName: "Bea", userId } })
      .then(
        () => assert.fail("two contacts share a user id"),
        (e: unknown) => ConnectError.from(e),
      );
    assert.equal(error.code, Code.AlreadyExists);
    assert.deepEqual(
      fieldViolations(error).map((v) => [v.field, v.reason]),
      [["contact.user_id", "ALREADY_EXISTS"]],
    );
  });

  it("gets NOT_FOUND for an unknown contact, with no field violations", async () => {
    const error = await client.getContact({ lookup: { case: "email", value: uniqueEmail() } }).then(
      () => assert.fail("found a contact that does not exist"),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(error.code, Code.NotFound);
    assert.deepEqual(fieldViolations(error), []);
  });

  it("runs the quickstart example end to end", async () => {
    const violations = await quickstart(client, uniqueEmail());
    assert.deepEqual(
      violations.map((v) => [v.field, v.reason]),
      [["contact.email", "INVALID_EMAIL"]],
    );
  });
});

// With MARKETING_TLS_URL: a service that requires mutual TLS, and the PEM files
// MARKETING_TLS_CA, MARKETING_TLS_CLIENT_CERT and MARKETING_TLS_CLIENT_KEY.
describe("marketing.v1 over mutual TLS", { skip: !process.env.MARKETING_TLS_URL }, () => {
  const tlsUrl = process.env.MARKETING_TLS_URL!;
  const read = (name: string) => readFileSync(process.env[name]!);

  it("calls with the client certificate and a token", async () => {
    const tls = {
      ca: read("MARKETING_TLS_CA"),
      cert: read("MARKETING_TLS_CLIENT_CERT"),
      key: read("MARKETING_TLS_CLIENT_KEY"),
    };
    const client = createMarketingClient(tlsUrl, { token, tls });
    const stats = await client.getQueueStats({});
    assert.equal(typeof stats.pending, "bigint");
  });

  it("is refused without a client certificate", async () => {
    const client = createMarketingClient(tlsUrl, { token, tls: { ca: read("MARKETING_TLS_CA") } });
    // TLS 1.3 refuses the missing certificate after the handshake: Node sees the
    // stream reset (CANCELED) or the connection fail (UNAVAILABLE).
    await assert.rejects(client.getQueueStats({}), (error: unknown) =>
      [Code.Unavailable, Code.Canceled].includes(ConnectError.from(error).code),
    );
  });
});
