// A walk through the service from TypeScript: upsert a contact, record their
// consent, track an order, page through contacts, and read the field
// violations of a rejected call. It starts nothing: point it at a running
// service (`make up` in the repository root), e.g.
//   MARKETING_URL=http://127.0.0.1:50051 MARKETING_TOKEN=<token> npm run example
// (`make up` prints the token).
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { randomUUID } from "node:crypto";
import {
  ConsentSchema,
  ConsentType,
  ContactSchema,
  EventSchema,
  createMarketingClient,
  errorReason,
  fieldViolations,
  type FieldViolation,
  type MarketingClient,
} from "../src/index.js";

/** Runs the walk-through; returns the field violations of the rejected upsert. */
export async function quickstart(client: MarketingClient, email: string): Promise<FieldViolation[]> {
  const { contact, created } = await client.upsertContact({
    contact: create(ContactSchema, { email, firstName: "Ada", loyaltyTier: "gold" }),
  });
  console.log(`${created ? "created" : "updated"} ${contact?.name} <${contact?.email}>`);

  const { consent } = await client.recordConsent({
    parent: contact!.name,
    consent: create(ConsentSchema, {
      type: ConsentType.EMAIL,
      granted: true,
      source: "checkout",
      consentTime: timestampNow(),
    }),
    requestId: randomUUID(), // a retry with the same id records nothing twice
  });
  console.log(`consent recorded: ${consent?.name}`);

  const order = create(EventSchema, {
    eventId: `order-${randomUUID()}`, // retries with the same id are deduplicated
    email,
    occurTime: timestampNow(),
    payload: {
      case: "placedOrder",
      value: {
        order: {
          orderId: "o-1001",
          total: { currencyCode: "EUR", units: 42n, nanos: 500_000_000 },
          lines: [
            {
              productId: "mug-7",
              title: "Stoneware mug",
              quantity: 1,
              unitPrice: { currencyCode: "EUR", units: 42n, nanos: 500_000_000 },
            },
          ],
        },
      },
    },
  });
  const tracked = await client.trackEvent({ event: order });
  console.log(`order tracked: ${tracked.eventId} (duplicate: ${tracked.duplicate})`);

  let pageToken = "";
  let pages = 0;
  do {
    const page = await client.listContacts({ pageSize: 100, pageToken });
    pages += 1;
    console.log(`page ${pages}: ${page.contacts.length} contacts`);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");

  const rejection = await client.upsertContact({ contact: { email: "not-an-email" } }).then(
    () => undefined,
    (error: unknown) => error,
  );
  if (rejection === undefined) {
    throw new Error("the service accepted a contact with an invalid email");
  }
  console.log(`rejected (${errorReason(rejection)}):`);
  const violations = fieldViolations(rejection);
  for (const v of violations) {
    console.log(`  ${v.field}: ${v.description} [${v.reason}]`);
  }
  return violations;
}

// Run directly (not when imported by the tests).
if (import.meta.url === `file://${process.argv[1]}`) {
  const url = process.env.MARKETING_URL ?? "http://127.0.0.1:50051";
  const token = process.env.MARKETING_TOKEN;
  await quickstart(createMarketingClient(url, { token }), `ada.${Date.now()}@example.com`);
}
