// Starts the Node reference server (npm `@durable-streams/server`) for the
// conformance harness and for `cargo xtask bench`.
//
//   node tests/conformance/reference-server.mjs [--port N] [--host H]
//        [--data-dir DIR] [--long-poll-timeout-ms MS] [--webhooks] [--no-compression]
//
// Without --data-dir the store is in memory. Prints `listening <url>` on stdout
// once ready; stops on SIGTERM/SIGINT.
import { DurableStreamTestServer } from "@durable-streams/server"

function parseArgs(argv) {
  const opts = { port: 0, host: "127.0.0.1", longPollTimeout: 500, webhooks: false, compression: true }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`)
      return argv[++i]
    }
    switch (a) {
      case "--port": opts.port = Number(next()); break
      case "--host": opts.host = next(); break
      case "--data-dir": opts.dataDir = next(); break
      case "--long-poll-timeout-ms": opts.longPollTimeout = Number(next()); break
      case "--webhooks": opts.webhooks = true; break
      case "--no-compression": opts.compression = false; break
      default: throw new Error(`unknown argument ${a}`)
    }
  }
  return opts
}

const server = new DurableStreamTestServer(parseArgs(process.argv.slice(2)))
const url = await server.start()
console.log(`listening ${url}`)

let stopping = false
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, async () => {
    if (stopping) process.exit(1)
    stopping = true
    const timer = setTimeout(() => process.exit(0), 2000)
    timer.unref()
    try { await server.stop() } finally { process.exit(0) }
  })
}
