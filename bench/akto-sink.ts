import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';

export interface AktoSink {
  /** Answers every ingestData POST at once. */
  url: string;
  /** Accepts connections and never answers: Akto stalled. */
  stalledUrl: string;
  spoolDir: string;
  records(): number;
  posts(): number;
  close(): Promise<void>;
}

/** A local stand-in for Akto's ingestion service, for load runs with tracing on. */
export async function startAktoSink(): Promise<AktoSink> {
  let records = 0;
  let posts = 0;
  const ok = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts++;
      try {
        records += (JSON.parse(Buffer.concat(chunks).toString()) as { batchData: unknown[] }).batchData.length;
      } catch {
        // counted as a post; a malformed batch shows up as fewer records
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"success":false}');
    });
  });
  const stalled = http.createServer(() => undefined);
  await Promise.all([ok, stalled].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
  const spoolDir = fs.mkdtempSync(path.join(os.tmpdir(), 'akto-bench-spool-'));
  return {
    url: `http://127.0.0.1:${(ok.address() as AddressInfo).port}`,
    stalledUrl: `http://127.0.0.1:${(stalled.address() as AddressInfo).port}`,
    spoolDir,
    records: () => records,
    posts: () => posts,
    close: async () => {
      for (const s of [ok, stalled]) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
      fs.rmSync(spoolDir, { recursive: true, force: true });
      fs.rmSync(spoolDir + '-stalled', { recursive: true, force: true });
    },
  };
}
