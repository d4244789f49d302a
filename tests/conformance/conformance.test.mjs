// Wrapper for the official Durable Streams conformance suite.
//   CONFORMANCE_TEST_URL=http://127.0.0.1:PORT npx vitest run tests/conformance/conformance.test.mjs
// Set CONFORMANCE_SUBSCRIPTIONS=1 to also run the reserved `__ds` subscription tests.
import { runConformanceTests } from "@durable-streams/server-conformance-tests"

if (!process.env.CONFORMANCE_TEST_URL) {
  throw new Error("CONFORMANCE_TEST_URL is not set (e.g. http://127.0.0.1:4437)")
}

runConformanceTests({
  baseUrl: process.env.CONFORMANCE_TEST_URL,
  subscriptions: process.env.CONFORMANCE_SUBSCRIPTIONS === "1",
})
