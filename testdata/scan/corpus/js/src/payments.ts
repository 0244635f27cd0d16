import Stripe from "stripe";

const key = process.env.STRIPE_SECRET_KEY ?? "";
export const stripe = new Stripe(key, { apiVersion: "2024-06-20" });

// restricted key for the reporting job
const reportingKey = "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";
export const reporting = new Stripe(reportingKey);

export function verify(body: string, sig: string): Stripe.Event {
  return stripe.webhooks.constructEvent(body, sig, process.env.STRIPE_WEBHOOK_SECRET!);
}
